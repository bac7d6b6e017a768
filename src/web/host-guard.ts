/**
 * Which Host and Origin headers the studio answers. A page on any web site can make the
 * user's browser POST to http://127.0.0.1:8080/api/stylize, and with DNS rebinding (the
 * attacker's name re-pointed at 127.0.0.1) it can read the replies too. The browser always
 * sends the name it thinks it talks to, so refusing names other than this server's defeats
 * rebinding, and refusing POSTs whose Origin is another site defeats cross-site requests.
 */
import os from 'node:os';
import type { IncomingHttpHeaders } from 'node:http';
import { UserError } from '../errors.js';
import { HttpError } from './http-error.js';

interface HostName {
  /** Lower case, IPv6 without brackets. */
  name: string;
  /** Undefined: any port (an --allowed-host given without one). */
  port?: number;
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];
const WILDCARDS = new Set(['0.0.0.0', '::', '']);

/** Splits `name`, `name:port`, `[v6]` or `[v6]:port`; null when it is none of these. */
function splitHost(value: string): { name: string; port?: number } | null {
  const m = /^\[([0-9a-f:.]+)\](?::(\d{1,5}))?$/i.exec(value) ?? /^([^:[\]/\s@]+)(?::(\d{1,5}))?$/.exec(value);
  if (!m) return null;
  // a trailing dot names the same host (an absolute DNS name)
  return { name: m[1].toLowerCase().replace(/\.$/, ''), port: m[2] === undefined ? undefined : Number(m[2]) };
}

/** Parses an --allowed-host value: a host name or address, optionally with :port. */
export function parseAllowedHost(value: string): HostName {
  const h = splitHost(value.trim());
  if (!h || h.name === '' || (h.port !== undefined && (h.port < 1 || h.port > 65535))) {
    throw new UserError(`--allowed-host ${JSON.stringify(value)} is not a host name; give it as NAME or NAME:PORT (e.g. studio.example.org or studio.example.org:8443), without http:// or a path`);
  }
  return h;
}

function hostLabel(h: HostName): string {
  const name = h.name.includes(':') ? `[${h.name}]` : h.name;
  return h.port === undefined ? name : `${name}:${h.port}`;
}

export interface HostGuardOptions {
  /** The --host the server was asked to bind (a name or an address). */
  bindHost: string;
  /** The address it actually bound. */
  boundAddress: string;
  port: number;
  /** --allowed-host values. */
  allowedHosts: readonly string[];
}

export class HostGuard {
  private readonly own: HostName[];
  private readonly extra: HostName[];
  private readonly wildcard: boolean;

  constructor(private readonly o: HostGuardOptions) {
    const names = new Set([...LOOPBACK_NAMES, o.bindHost.toLowerCase(), o.boundAddress.toLowerCase()].filter((n) => !WILDCARDS.has(n)));
    this.own = [...names].map((name) => ({ name, port: o.port }));
    this.extra = o.allowedHosts.map(parseAllowedHost);
    this.wildcard = WILDCARDS.has(o.boundAddress) || WILDCARDS.has(o.bindHost);
  }

  /** The names this server answers to, for error messages. */
  describe(): string {
    const list = [...this.own, ...this.extra].map(hostLabel);
    if (this.wildcard) list.push(`this machine's addresses (port ${this.o.port})`);
    return list.join(', ');
  }

  /** `tlsProxied`: an https origin, which only an --allowed-host (a TLS proxy in front) can be. */
  private accepts(name: string, port: number, tlsProxied = false): boolean {
    if (this.extra.some((h) => h.name === name && (h.port === undefined || h.port === port))) return true;
    if (tlsProxied) return false;
    if (this.own.some((h) => h.name === name && h.port === port)) return true;
    // bound to every interface: an address literal of this machine cannot be a rebound DNS
    // name, so it is safe; interfaces come and go (DHCP, VPN), hence the lookup per request
    if (this.wildcard && port === this.o.port) {
      return Object.values(os.networkInterfaces()).some((list) => list?.some((a) => a.address.toLowerCase() === name));
    }
    return false;
  }

  /** Throws a 403 HttpError when the request's Host or (for anything but GET/HEAD) Origin is not this server. */
  check(method: string, headers: IncomingHttpHeaders): void {
    const host = headers.host;
    // HTTP/1.0 clients may omit Host; browsers never do, so such a request cannot be a rebinding
    if (host !== undefined) {
      const h = splitHost(host);
      if (!h || !this.accepts(h.name, h.port ?? 80)) {
        throw new HttpError(403, `refused: the Host header ${JSON.stringify(host)} does not name this server, which answers to ${this.describe()} `
          + `(a guard against DNS rebinding); to serve it under that name too, restart adain serve with --allowed-host ${h ? hostLabel({ name: h.name }) : 'NAME'}`);
      }
    }
    const origin = headers.origin;
    if (origin === undefined || method === 'GET' || method === 'HEAD') return;
    let url: URL | undefined;
    try {
      url = new URL(origin);
    } catch {
      // "null" (a sandboxed frame, a file:// page) and other unparsable origins are refused below
    }
    const name = url?.hostname.replace(/^\[|\]$/g, '').toLowerCase().replace(/\.$/, '');
    const port = url && (url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80);
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || !name || port === undefined || !this.accepts(name, port, url.protocol === 'https:')) {
      throw new HttpError(403, `refused a cross-origin ${method} from ${origin}: only pages served by this server (${this.describe()}) may send it requests; `
        + `to let that site's pages call the API, restart adain serve with --allowed-host ${url?.host || 'NAME'}`);
    }
  }
}

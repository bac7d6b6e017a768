/**
 * An error caused by what the user gave us (a file, a flag, an image), as opposed to a bug.
 * The CLI prints its message on one line and exits with code 2; nothing else is printed.
 */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

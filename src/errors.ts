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

/**
 * A command that finished what it could but must still exit non-zero (interrupted: 130; some
 * inputs skipped: 2). Its message, if any, was already printed by the command.
 */
export class ExitStatus extends Error {
  constructor(readonly code: number, message = `exit status ${code}`) {
    super(message);
    this.name = 'ExitStatus';
  }
}

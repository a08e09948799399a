/**
 * Every error devstack raises is a DevstackError with a stable `code`, so callers and HTTP
 * clients can branch on the code instead of parsing messages.
 */
export class DevstackError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

export class InvalidKeyError extends DevstackError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DEVSTACK_INVALID_KEY', message, options);
  }
}

/** A registry description that cannot become a snapshot; `problems` lists every reason at once. */
export class RegistryValidationError extends DevstackError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[], options?: { cause?: unknown; source?: string }) {
    const where = options?.source ? ` in ${options.source}` : '';
    super(
      'DEVSTACK_INVALID_REGISTRY',
      `invalid registry${where}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n  - ${problems.join('\n  - ')}`,
      options,
    );
    this.problems = Object.freeze([...problems]);
  }
}

export class ConfigError extends DevstackError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[], options?: { cause?: unknown }) {
    super('DEVSTACK_INVALID_CONFIG', problems.join('\n'), options);
    this.problems = Object.freeze([...problems]);
  }
}

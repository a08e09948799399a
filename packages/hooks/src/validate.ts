import { describeUntrusted, isValidKey } from '@devstack/core';

/**
 * Checks of every value a command puts into an object name, a Traefik rule, a label or a queue
 * name. Each returns a problem line, or undefined when the value is fine; commands collect them all
 * and refuse before the first request.
 */
export type Check = (flag: string, value: string) => string | undefined;

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

export const routingKey: Check = (flag, value) =>
  isValidKey(value) && value !== 'base'
    ? undefined
    : `${flag}: ${describeUntrusted(value)} is not a routing key (a DNS-1123 label: a-z, 0-9, '-', at most 63 characters; not "base")`;

export const dnsLabel: Check = (flag, value) => (DNS_LABEL.test(value) ? undefined : `${flag}: ${describeUntrusted(value)} is not a DNS-1123 label`);

/** Object names and hosts: a DNS-1123 subdomain, which keeps backticks and spaces out of rules. */
export const dnsSubdomain: Check = (flag, value) =>
  value.length <= 253 && DNS_SUBDOMAIN.test(value) && value.split('.').every((l) => l.length <= 63) ? undefined : `${flag}: ${describeUntrusted(value)} is not a DNS-1123 subdomain`;

/** A Kubernetes Service name (DNS-1035 label). */
export const serviceName: Check = (flag, value) => (/^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/.test(value) ? undefined : `${flag}: ${describeUntrusted(value)} is not a Service name (a DNS-1035 label)`);

/** A header name as Traefik matches it: an HTTP token, lower case. */
export const headerName: Check = (flag, value) => (/^[a-z0-9!#$%&'*+.^_|~-]{1,128}$/.test(value) ? undefined : `${flag}: ${describeUntrusted(value)} is not a lower-case header name`);

/** A Service port: a number, or the name of one of its ports (an IANA service name). */
export const portRef: Check = (flag, value) => {
  if (/^[0-9]+$/.test(value)) return Number(value) >= 1 && Number(value) <= 65535 ? undefined : `${flag}: ${value} is not a port from 1 to 65535`;
  return /^(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/.test(value) && !value.includes('--') ? undefined : `${flag}: ${describeUntrusted(value)} is not a port number or port name`;
};

/** kube-janitor's TTL format. */
export const ttl: Check = (flag, value) => (/^([1-9][0-9]{0,8}[smhdw]|forever)$/.test(value) ? undefined : `${flag}: ${describeUntrusted(value)} is not a TTL such as 30m, 6h, 7d or forever`);

/** A Secret data key. */
export const secretKey: Check = (flag, value) => (/^[-._a-zA-Z0-9]{1,253}$/.test(value) && value !== '.' && value !== '..' ? undefined : `${flag}: ${describeUntrusted(value)} is not a Secret key (letters, digits, '-', '_', '.')`);

/** An SQS queue name, `.fifo` allowed at the end. */
export const queueName: Check = (flag, value) => (/^[A-Za-z0-9_-]{1,80}$/.test(value.replace(/\.fifo$/, '')) && value.length <= 80 ? undefined : `${flag}: ${describeUntrusted(value)} is not an SQS queue name (A-Z, a-z, 0-9, '-', '_', at most 80 characters, .fifo at the end)`);

/** Runs the checks of the values that are present. */
export function problemsOf(checks: readonly (readonly [Check, string, string | undefined])[]): string[] {
  const problems: string[] = [];
  for (const [check, flag, value] of checks) {
    if (value === undefined) continue;
    const problem = check(flag, value);
    if (problem !== undefined) problems.push(problem);
  }
  return problems;
}

/** An SNS topic name, `.fifo` allowed at the end. */
export const topicName: Check = (flag, value) => (/^[A-Za-z0-9_-]{1,256}$/.test(value.replace(/\.fifo$/, '')) && value.length <= 256 ? undefined : `${flag}: ${describeUntrusted(value)} is not an SNS topic name (A-Z, a-z, 0-9, '-', '_', at most 256 characters, .fifo at the end)`);

const TOPIC_ARN = /^arn:aws[a-z-]{0,16}:sns:[a-z0-9-]{1,32}:[0-9]{12}:([A-Za-z0-9_.-]{1,256})$/;

/** A topic by name or by ARN (`arn:aws:sns:REGION:ACCOUNT:NAME`). */
export const topicRef: Check = (flag, value) => {
  if (!value.startsWith('arn:')) return topicName(flag, value);
  const m = TOPIC_ARN.exec(value);
  return m !== null && topicName(flag, m[1]!) === undefined ? undefined : `${flag}: ${describeUntrusted(value)} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)`;
};

/** An SNS/SQS message attribute name: the key's attribute a filter policy matches. */
export const attributeName: Check = (flag, value) =>
  /^[A-Za-z0-9_-]([A-Za-z0-9_.-]{0,254}[A-Za-z0-9_-])?$/.test(value) && !value.includes('..') && !/^(aws\.|amazon\.)/i.test(value)
    ? undefined
    : `${flag}: ${describeUntrusted(value)} is not a message attribute name (A-Z, a-z, 0-9, '_', '-', '.', at most 256 characters, not starting with AWS. or Amazon.)`;

/**
 * A PostgreSQL database or role name this tool writes into SQL: letters, digits and '_', not
 * starting with a digit, at most 63 bytes (PostgreSQL cuts longer names without an error, so two
 * copies could end up as one). Quoted as well when it is used; this keeps what is quoted plain.
 */
export const pgIdentifier: Check = (flag, value) => (/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(value) ? undefined : `${flag}: ${describeUntrusted(value)} is not a PostgreSQL name this tool accepts (A-Z, a-z, 0-9, '_', not starting with a digit, at most 63 characters)`);

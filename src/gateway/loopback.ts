/**
 * Whether `host` (a bind address or a URL's host name, IPv6 with or without brackets) is a loopback address, so
 * that only programs on this machine reach it.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

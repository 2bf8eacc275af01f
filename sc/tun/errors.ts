// Errors of sc/tun that a user can act on. Each says what happened and what to do; the CLI
// prints a UserError as a single line instead of a stack trace.
import { UserError } from "../../common/errors.js";

export interface TunErrorInfo {
  /** errno name ("EPERM") or an ERR_TUN_* code. */
  code: string;
  errno?: number;
  syscall?: string;
  cause?: unknown;
}

export class TunError extends UserError {
  readonly errno: number | undefined;
  readonly syscall: string | undefined;

  constructor(message: string, info: TunErrorInfo) {
    super(message, info.code, { cause: info.cause });
    this.errno = info.errno;
    this.syscall = info.syscall;
  }
}

/** The shape of the errors the addon throws (like node's system errors). */
export interface SystemErrorLike {
  code?: string;
  errno?: number;
  syscall?: string;
  message?: string;
}

const NO_DEVICE =
  "/dev/net/tun is not available: load the tun module (modprobe tun) or, in a container, " +
  "pass the device in (docker run --device /dev/net/tun --cap-add NET_ADMIN ...)";
const NEED_ADMIN = "run as root or with CAP_NET_ADMIN";

/**
 * Turns an error of opening/configuring TUN device `name` into a TunError that says what
 * to do. `name` is what was asked for ("" when the kernel picks the name).
 */
export function explainTunError(err: SystemErrorLike, name: string): TunError {
  const code = err.code ?? "EUNKNOWN";
  const syscall = err.syscall ?? "";
  const dev = name ? `TUN device '${name}'` : "a TUN device";
  const info = { code, errno: err.errno, syscall, cause: err };
  const at = (what: string) => new TunError(what, info);

  if (syscall.startsWith("open")) {
    switch (code) {
      case "ENOENT":
      case "ENODEV":
      case "ENXIO":
        return at(NO_DEVICE);
      case "EACCES":
      case "EPERM":
        return at(`permission denied opening /dev/net/tun: ${NEED_ADMIN}`);
    }
  }
  if (syscall.includes("TUNSETIFF")) {
    switch (code) {
      case "EPERM":
        return at(
          `not allowed to create or attach ${dev}: ${NEED_ADMIN} ` +
            "(a non-root user can attach only to a persistent device made for it: ip tuntap add mode tun name NAME user UID)",
        );
      case "EBUSY":
        return at(
          `${dev} is busy: another process has it open (a device without multi_queue takes one opener), ` +
            "or it exists and an exclusive open was asked; close the other user or pick another name",
        );
      case "EINVAL":
        return at(
          `cannot open ${dev}: the name is taken by a link that is not a compatible TUN device ` +
            "(a TAP device or another kind of link, or a persistent TUN created with a different multi_queue setting), " +
            "or the name is invalid; pick another name or recreate it with ip tuntap add mode tun",
        );
      case "EBADFD":
        return at(`cannot open ${dev}: this fd is already attached to a device`);
    }
  }
  if (syscall.includes("SIOCSIFMTU")) {
    if (code === "EPERM" || code === "EACCES")
      return at(`setting the MTU of ${dev} needs root or CAP_NET_ADMIN`);
    if (code === "EINVAL") return at(`the MTU asked for ${dev} is out of range (68..65535 for IPv4)`);
  }
  if (syscall.includes("SIOCSIFFLAGS") && (code === "EPERM" || code === "EACCES")) {
    return at(`bringing ${dev} up or down needs root or CAP_NET_ADMIN`);
  }
  if (code === "ENODEV" || code === "ENXIO") {
    return at(`${dev} no longer exists in this network namespace (deleted while open?)`);
  }
  return at(`${dev}: ${err.message ?? code}`);
}

/**
 * Checks an interface name the way the kernel does (dev_valid_name): 1..15 bytes, not "."
 * or "..", no '/', ':' or whitespace. "%d" is allowed: the kernel fills in a number.
 */
export function checkInterfaceName(name: string): TunError | undefined {
  const bad = (why: string) =>
    new TunError(`invalid interface name '${name}': ${why}`, { code: "ERR_TUN_BAD_NAME" });
  const bytes = Buffer.byteLength(name);
  if (bytes === 0) return bad("empty (leave the name out to let the kernel pick tunN)");
  if (bytes > 15) return bad(`${bytes} bytes long, the limit is 15`);
  if (name === "." || name === "..") return bad("'.' and '..' are not allowed");
  if (/[/:\s]/.test(name)) return bad("'/', ':' and whitespace are not allowed");
  return undefined;
}

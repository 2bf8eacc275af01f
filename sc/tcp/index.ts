// sc/tcp: the user-space TCP stack (see docs/tcp.md).
export { DEFAULT_TCP_CONFIG, makeConfig, windowScaleFor, type TcpConfig } from "./config.js";
export { TcpConnection, type ConnectionSnapshot } from "./connection.js";
export { type CloneBehaviour, type CloseReason, type FourTuple, type TcpState } from "./types.js";
export {
  TcpStack,
  type ConnectionOwner,
  type ImportOptions,
  type ListenerHooks,
  type LocalEndpoint,
  type TcpCounters,
  type TcpListener,
  type TcpStackOptions,
} from "./stack.js";
export {
  TcpServer,
  TcpSocket,
  connectTcp,
  type TcpConnectOptions,
  type TcpServerOptions,
  type TcpSocketOptions,
} from "./socket.js";
export {
  MAX_IMPORTED_CWND_IW,
  STATE_SIZE,
  STATE_VERSION,
  checkSeed,
  decodeState,
  encodeState,
  exportState,
  importState,
  validateImport,
  type ImportPolicy,
  type ImportStateOptions,
  type TcpExportedState,
  type ValidatedImport,
} from "./state.js";
export { implausibleRemote, type ImplausibleAddress } from "../wire/addr.js";
export { TcpTunRuntime, type TunRuntimeOptions } from "./runtime.js";
export { gsoSegment } from "./gso.js";

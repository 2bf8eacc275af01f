// Public API of the local cluster launcher (see docs/cluster.md).
export {
  Cluster,
  ClusterStartError,
  destroyCluster,
  openCluster,
  readCapabilities,
  readClusterStatus,
  startCluster,
  withCluster,
  type ClusterDownReport,
  type ClusterProcess,
  type ClusterStatus,
  type ProcessExit,
  type ProcessHealth,
  type StartOptions,
} from "./cluster.js";
export {
  ClusterOptionError,
  DEFAULT_CACHE_BYTES,
  DEFAULT_MODE,
  DEFAULT_NODES,
  DEFAULT_SCHEDULER,
  DEFAULT_WORKERS,
  DISPATCHER_ADMIN_PORT,
  GUE_PORT,
  HTTP_PORT,
  NODE_ADMIN_PORT,
  ORIGIN_PORT,
  clusterDir,
  parseByteSize,
  planCluster,
  type Capabilities,
  type ClusterOptions,
  type ClusterPlan,
  type ProcessPlan,
} from "./plan.js";
export { HostHttp, type HttpAnswer } from "./http-agent.js";
export { makeDemoSite, type DemoSite } from "./demo-site.js";
export { formatClusterStatus } from "./format.js";

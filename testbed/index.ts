// Public API of the network-namespace testbed (see docs/testbed.md).
export {
  Testbed,
  TestbedEnvironmentError,
  checkEnvironment,
  createTestbed,
  destroyTestbed,
  openTestbed,
  overlapsTestbed,
  readTestbedStatus,
  testPrefix,
  withTestbed,
  type CreateOptions,
  type DownReport,
  type ExecOptions,
} from "./testbed.js";
export {
  DEFAULT_PREFIX,
  DISPATCHER_IP,
  EXPOSE_IP,
  LAN_DEV,
  MAX_NODES,
  ORIGIN_IP,
  SUBNET,
  TUN_DEV,
  VIP,
  TestbedOptionError,
  clientIp,
  nodeIp,
  parseRate,
  planTestbed,
  type TestbedOptions,
  type TestbedPlan,
} from "./topology.js";
export { formatStatus, type HostRole, type HostStatus, type TestbedStatus } from "./status.js";
export { CommandError, run, type RunOptions, type RunResult } from "./run.js";

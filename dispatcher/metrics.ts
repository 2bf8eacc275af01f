// Prometheus metrics for the dispatcher, on a private prom-client Registry. The data path
// only bumps plain counters; these metrics read them when /metrics is scraped (collect()),
// so forwarding never calls into prom-client.
import { Registry, collectDefaultMetrics } from "prom-client";
import { CONN_STATE_NAMES, type ConnState } from "./conn-table.js";
import { DROP_REASONS, type ConnTableCounts, type ForwarderModel } from "./forwarder.js";
import type { DispatcherControl } from "./control.js";
import type { Node } from "./nodes.js";
import {
  byLabel,
  mirrorCounter,
  mirrorCounterBy,
  mirrorGauge,
  mirrorGaugeBy,
} from "../server/metrics-mirror.js";

export function createMetrics(control: DispatcherControl, extra?: (registry: Registry) => void): Registry {
  const registry = new Registry();
  registerTrafficMetrics(registry, control.forwarder);
  registerNodeMetrics(registry, control.forwarder);
  registerTableMetrics(registry, control.forwarder.table);
  extra?.(registry);
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** Packets and bytes in, what was dropped, and what the dispatcher itself sent to clients. */
function registerTrafficMetrics(registry: Registry, f: ForwarderModel): void {
  mirrorCounter(
    registry,
    "sc_dispatcher_packets_received_total",
    "Packets read from the VIP's TUN device",
    () => f.packetsIn,
  );
  mirrorCounter(
    registry,
    "sc_dispatcher_bytes_received_total",
    "Bytes of packets read from the VIP's TUN device",
    () => f.bytesIn,
  );
  mirrorCounterBy(
    registry,
    "sc_dispatcher_drops_total",
    "Client packets not forwarded, by reason",
    ["reason"],
    () => byLabel("reason", DROP_REASONS, (r) => f.dropCount(r)),
  );
  mirrorCounter(
    registry,
    "sc_dispatcher_rsts_sent_total",
    "RSTs sent to clients (node gone, removed or down past the grace; no node; lost connection; table full)",
    () => f.rstsSent,
  );
  mirrorCounter(
    registry,
    "sc_dispatcher_tickles_sent_total",
    "Connections of lost nodes prompted to answer (two bare ACKs each), so that the answer gets a RST instead of the client waiting",
    () => f.ticklesSent,
  );
}

/** Per node: what was forwarded and scheduled to it, its connections, health and weight. */
function registerNodeMetrics(registry: Registry, f: ForwarderModel): void {
  const perNode = (value: (n: Node) => number) => () =>
    f.nodes.list().map((n) => [{ node: n.id }, value(n)] as const);
  const counter = (name: string, help: string, value: (n: Node) => number) =>
    mirrorCounterBy(registry, name, help, ["node"], perNode(value));
  const gauge = (name: string, help: string, value: (n: Node) => number) =>
    mirrorGaugeBy(registry, name, help, ["node"], perNode(value));

  counter(
    "sc_dispatcher_packets_forwarded_total",
    "Client packets forwarded to a node in GUE",
    (n) => n.packets,
  );
  counter(
    "sc_dispatcher_bytes_forwarded_total",
    "Bytes of client packets (inner IPv4 packets) forwarded to a node",
    (n) => n.bytes,
  );
  counter(
    "sc_dispatcher_connections_scheduled_total",
    "New connections scheduled to a node",
    (n) => n.scheduled,
  );
  mirrorGaugeBy(
    registry,
    "sc_dispatcher_connections",
    "Connection-table entries per node: active = established, inactive = handshake or closing",
    ["node", "state"],
    () =>
      f.nodes
        .list()
        .flatMap((n) => [
          [{ node: n.id, state: "active" }, f.table.active(n.slot)] as const,
          [{ node: n.id, state: "inactive" }, f.table.inactive(n.slot)] as const,
        ]),
  );
  gauge("sc_dispatcher_node_up", "1 while the node passes its health checks", (n) => (n.healthy ? 1 : 0));
  gauge(
    "sc_dispatcher_node_gone",
    "1 while the node is down and its admin port refuses connections (its connections are reset)",
    (n) => (!n.healthy && n.gone ? 1 : 0),
  );
  counter(
    "sc_dispatcher_node_down_forwarded_total",
    "Client packets of existing connections forwarded to the node while it was down (within --dead-grace)",
    (n) => n.downForwarded,
  );
  gauge("sc_dispatcher_node_weight", "Scheduling weight of the node (0 while draining)", (n) =>
    n.removed ? 0 : n.weight,
  );
  counter(
    "sc_dispatcher_node_rsts_total",
    "RSTs sent to clients whose connection was on this node: removed while down, gone, or down past --dead-grace",
    (n) => n.rsts,
  );
}

/** The connection table: entries by state, size and capacity, evictions and expiries. */
function registerTableMetrics(registry: Registry, t: ConnTableCounts): void {
  mirrorGaugeBy(
    registry,
    "sc_dispatcher_conn_table_entries",
    "Connection-table entries by TCP state",
    ["state"],
    () => CONN_STATE_NAMES.map((name, s) => [{ state: name }, t.countInState(s as ConnState)] as const),
  );
  mirrorGauge(
    registry,
    "sc_dispatcher_conn_table_size",
    "Connection-table entries in all states",
    () => t.size,
  );
  mirrorGauge(
    registry,
    "sc_dispatcher_conn_table_capacity",
    "Most connection-table entries (fixed at start)",
    () => t.capacity,
  );
  mirrorCounterBy(
    registry,
    "sc_dispatcher_conn_evictions_total",
    "Entries evicted early: half_open = unconfirmed budget used up (SYN flood), table_full = no room " +
      "(only finished or unconfirmed entries are evicted)",
    ["reason"],
    () => [
      [{ reason: "half_open" }, t.evictedHalfOpen],
      [{ reason: "table_full" }, t.evictedFull],
    ],
  );
  mirrorGauge(
    registry,
    "sc_dispatcher_conn_table_confirmed",
    "Connection-table entries the client confirmed by sending payload (the rest count against the half-open budget)",
    () => t.confirmed,
  );
  mirrorCounter(
    registry,
    "sc_dispatcher_conn_expired_total",
    "Entries removed after their state's idle timeout",
    () => t.expired,
  );
}

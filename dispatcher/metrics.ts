// Prometheus metrics for the dispatcher, on a private prom-client Registry. The data path
// only bumps plain counters; these metrics read them when /metrics is scraped (collect()),
// so forwarding never calls into prom-client.
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import { CONN_STATE_NAMES, type ConnState } from "./conn-table.js";
import { DROP_REASONS } from "./forwarder.js";
import type { DispatcherControl } from "./control.js";

export function createMetrics(control: DispatcherControl, extra?: (registry: Registry) => void): Registry {
  const registry = new Registry();
  const f = control.forwarder;
  const t = f.table;
  const nodes = () => f.nodes.list();

  new Counter({
    name: "sc_dispatcher_packets_received_total",
    help: "Packets read from the VIP's TUN device",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(f.packetsIn);
    },
  });
  new Counter({
    name: "sc_dispatcher_bytes_received_total",
    help: "Bytes of packets read from the VIP's TUN device",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(f.bytesIn);
    },
  });
  new Counter({
    name: "sc_dispatcher_packets_forwarded_total",
    help: "Client packets forwarded to a node in GUE",
    labelNames: ["node"],
    registers: [registry],
    collect() {
      this.reset();
      for (const n of nodes()) this.inc({ node: n.id }, n.packets);
    },
  });
  new Counter({
    name: "sc_dispatcher_bytes_forwarded_total",
    help: "Bytes of client packets (inner IPv4 packets) forwarded to a node",
    labelNames: ["node"],
    registers: [registry],
    collect() {
      this.reset();
      for (const n of nodes()) this.inc({ node: n.id }, n.bytes);
    },
  });
  new Counter({
    name: "sc_dispatcher_connections_scheduled_total",
    help: "New connections scheduled to a node",
    labelNames: ["node"],
    registers: [registry],
    collect() {
      this.reset();
      for (const n of nodes()) this.inc({ node: n.id }, n.scheduled);
    },
  });
  new Gauge({
    name: "sc_dispatcher_connections",
    help: "Connection-table entries per node: active = established, inactive = handshake or closing",
    labelNames: ["node", "state"],
    registers: [registry],
    collect() {
      this.reset();
      for (const n of nodes()) {
        this.set({ node: n.id, state: "active" }, t.active(n.slot));
        this.set({ node: n.id, state: "inactive" }, t.inactive(n.slot));
      }
    },
  });
  new Gauge({
    name: "sc_dispatcher_node_up",
    help: "1 while the node passes its health checks",
    labelNames: ["node"],
    registers: [registry],
    collect() {
      this.reset();
      for (const n of nodes()) this.set({ node: n.id }, n.healthy ? 1 : 0);
    },
  });
  new Gauge({
    name: "sc_dispatcher_node_gone",
    help: "1 while the node is down and its admin port refuses connections (its connections are reset)",
    labelNames: ["node"],
    registers: [registry],
    collect() {
      this.reset();
      for (const n of nodes()) this.set({ node: n.id }, !n.healthy && n.gone ? 1 : 0);
    },
  });
  new Counter({
    name: "sc_dispatcher_node_down_forwarded_total",
    help: "Client packets of existing connections forwarded to the node while it was down (within --dead-grace)",
    labelNames: ["node"],
    registers: [registry],
    collect() {
      this.reset();
      for (const n of nodes()) this.inc({ node: n.id }, n.downForwarded);
    },
  });
  new Gauge({
    name: "sc_dispatcher_node_weight",
    help: "Scheduling weight of the node (0 while draining)",
    labelNames: ["node"],
    registers: [registry],
    collect() {
      this.reset();
      for (const n of nodes()) this.set({ node: n.id }, n.removed ? 0 : n.weight);
    },
  });
  new Counter({
    name: "sc_dispatcher_node_rsts_total",
    help: "RSTs sent to clients whose connection was on this node: removed while down, gone, or down past --dead-grace",
    labelNames: ["node"],
    registers: [registry],
    collect() {
      this.reset();
      for (const n of nodes()) this.inc({ node: n.id }, n.rsts);
    },
  });
  new Gauge({
    name: "sc_dispatcher_conn_table_entries",
    help: "Connection-table entries by TCP state",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      this.reset();
      CONN_STATE_NAMES.forEach((name, s) => this.set({ state: name }, t.countInState(s as ConnState)));
    },
  });
  new Gauge({
    name: "sc_dispatcher_conn_table_size",
    help: "Connection-table entries in all states",
    registers: [registry],
    collect() {
      this.set(t.size);
    },
  });
  new Gauge({
    name: "sc_dispatcher_conn_table_capacity",
    help: "Most connection-table entries (fixed at start)",
    registers: [registry],
    collect() {
      this.set(t.capacity);
    },
  });
  new Counter({
    name: "sc_dispatcher_conn_evictions_total",
    help:
      "Entries evicted early: half_open = unconfirmed budget used up (SYN flood), table_full = no room " +
      "(only finished or unconfirmed entries are evicted)",
    labelNames: ["reason"],
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ reason: "half_open" }, t.evictedHalfOpen);
      this.inc({ reason: "table_full" }, t.evictedFull);
    },
  });
  new Gauge({
    name: "sc_dispatcher_conn_table_confirmed",
    help: "Connection-table entries the client confirmed by sending payload (the rest count against the half-open budget)",
    registers: [registry],
    collect() {
      this.set(t.confirmed);
    },
  });
  new Counter({
    name: "sc_dispatcher_conn_expired_total",
    help: "Entries removed after their state's idle timeout",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(t.expired);
    },
  });
  new Counter({
    name: "sc_dispatcher_drops_total",
    help: "Client packets not forwarded, by reason",
    labelNames: ["reason"],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of DROP_REASONS) this.inc({ reason: r }, f.dropCount(r));
    },
  });
  new Counter({
    name: "sc_dispatcher_rsts_sent_total",
    help: "RSTs sent to clients (node gone, removed or down past the grace; no node; lost connection; table full)",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(f.rstsSent);
    },
  });
  new Counter({
    name: "sc_dispatcher_tickles_sent_total",
    help: "Connections of lost nodes prompted to answer (two bare ACKs each), so that the answer gets a RST instead of the client waiting",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(f.ticklesSent);
    },
  });
  extra?.(registry);
  collectDefaultMetrics({ register: registry });
  return registry;
}

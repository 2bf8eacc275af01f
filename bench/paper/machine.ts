// The machine a benchmark ran on, recorded beside its figures.
import os from "node:os";
import { loadAverage } from "./procstat.js";

export interface MachineInfo {
  cpu: string;
  cpus: number;
  memory_gb: number;
  kernel: string;
  node: string;
  /** 1, 5 and 15 minute load averages when the run ended (other work on the machine shows here). */
  load_average: number[];
}

export async function machineInfo(): Promise<MachineInfo> {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cpus: cpus.length,
    memory_gb: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    load_average: loadAverage(),
  };
}

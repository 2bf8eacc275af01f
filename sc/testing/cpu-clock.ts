// The clock the linear-time checks run on: CPU time of this process in ms. Time the machine
// spends on other processes (other test files, other jobs on a shared host) does not count.
export function cpuClockMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

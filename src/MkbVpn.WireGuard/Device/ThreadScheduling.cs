using System.Runtime.InteropServices;
using MkbVpn.WireGuard.Interop;

namespace MkbVpn.WireGuard.Device;

/// <summary>
/// The data path's threads (TUN reader, UDP receiver, crypto lane helpers) run as SCHED_BATCH: the same CPU share
/// as any other thread (same nice value), but their wake-ups do not preempt the thread running on that core; they
/// wait for its slice to end or for it to sleep. A packet loop woken thousands of times a second otherwise cuts into
/// whoever runs there (on a VPN host: the services its users reach, and the other direction's loop), each time with
/// a context switch and cold caches. On an idle core nothing changes. Measured on the 2-core bench
/// (Device/README.md, round 7). The engine turns it on (<see cref="Device.BatchScheduling"/>); in-process devices in
/// tests keep the default policy.
/// </summary>
internal static class ThreadScheduling
{
    /// <summary>Switches the calling thread to SCHED_BATCH; returns the errno on failure (0 on success).</summary>
    public static unsafe int UseBatch()
    {
        int priority = 0;
        return Libc.SchedSetScheduler(0, Libc.SCHED_BATCH, &priority) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }
}

//! The tunnel device's packet counts from the kernel (`/proc/self/net/dev`, the reading
//! process's own network namespace): what the path check reads to tell an idle session from a
//! busy one without waking the engine's task (a wake per check was most of the idle guest's
//! CPU).

/// Packets received plus packets sent by `device`, as `/proc/net/dev` text shows them; None
/// when the device is not listed or its line does not parse.
pub fn packets(proc_net_dev: &str, device: &str) -> Option<u64> {
    proc_net_dev.lines().skip(2).find_map(|line| {
        let (name, counters) = line.split_once(':')?;
        if name.trim() != device {
            return None;
        }
        let fields: Vec<u64> = counters.split_whitespace().map(str::parse).collect::<Result<_, _>>().ok()?;
        // Receive: bytes packets errs drop fifo frame compressed multicast; then transmit.
        let (rx, tx) = (fields.get(1)?, fields.get(9)?);
        Some(rx.wrapping_add(*tx))
    })
}

/// `packets` for `device` in this process's network namespace, read now.
pub fn read_packets(device: &str) -> Option<u64> {
    packets(&std::fs::read_to_string("/proc/self/net/dev").ok()?, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout of this machine's /proc/net/dev (Debian 12, kernel 6.18: its header and lo
    /// line as read), with lines of the guest's device and a NIC added.
    const RECORDED: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 3053062   46941    0    0    0     0          0         0  3053062   46941    0    0    0     0       0          0
dockroute0: 1840     23    0    0    0     0          0         0     2716      31    0    0    0     0       0          0
  eth0: 98132211  70412    0   12    0     0          0         0 12002213   50211    0    0    0     0       0          0
";

    #[test]
    fn the_devices_received_and_sent_packets_are_added() {
        assert_eq!(packets(RECORDED, "dockroute0"), Some(23 + 31));
        assert_eq!(packets(RECORDED, "eth0"), Some(70412 + 50211));
    }

    #[test]
    fn a_missing_device_the_header_or_a_garbled_line_is_none() {
        assert_eq!(packets(RECORDED, "dockroute1"), None);
        assert_eq!(packets(RECORDED, "face |bytes"), None);
        assert_eq!(packets("h1\nh2\nx0: 1 two 3\n", "x0"), None);
        assert_eq!(packets("h1\nh2\nx0: 1 2 3\n", "x0"), None, "too few fields");
        assert_eq!(packets("", "x0"), None);
    }

    #[test]
    fn this_processs_loopback_is_read() {
        assert!(read_packets("lo").is_some(), "every network namespace has lo");
    }
}

//! What macOS `route(8)` said, decided from its output alone. It exits 0 whenever it got as
//! far as asking the kernel, even when the kernel refused: the refusal is only printed, once on
//! stderr ("route: writing to routing socket: File exists") and once at the end of its report
//! line on stdout ("add net 198.19.1.0: gateway utun5: File exists"). Only usage and address
//! errors exit non-zero. So the verdict reads the text first and the exit code second.
//!
//! Every sample in the tests is what Apple's network_cmds `route.tproj/route.c` prints
//! (`newroute` prints the report line, `rtmsg` the warning, `route_strerror` maps ESRCH to
//! "not in table"), with the strerror(3) texts of xnu's `bsd/sys/errno.h`.

use std::io;

use dockroute_stdx::process::Output;

/// What `route add`/`route delete` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The kernel took the request.
    Done,
    /// EEXIST: an identical route is there already (someone else's, or ours from before).
    Exists,
    /// ESRCH ("not in table"): nothing to delete.
    NotInTable,
    /// route could not resolve an argument: for us, the interface, which no longer exists
    /// (and took its routes with it).
    BadAddress(String),
    /// Anything else, with route's own words.
    Failed(String),
}

/// The request we gave `route`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Add,
    Delete,
}

/// The kernel's answer as route printed it, whatever the exit code.
pub fn judge(code: Option<i32>, stdout: &str, stderr: &str) -> Verdict {
    if let Some(reason) = refusal(stdout, stderr) {
        return match reason {
            "File exists" => Verdict::Exists,
            "not in table" => Verdict::NotInTable,
            other => Verdict::Failed(other.to_string()),
        };
    }
    if code == Some(0) {
        return Verdict::Done;
    }
    if let Some(addr) = stderr.lines().find_map(|l| l.strip_prefix("route: bad address: ")) {
        return Verdict::BadAddress(addr.trim().to_string());
    }
    let why = if stderr.trim().is_empty() { stdout.trim() } else { stderr.trim() };
    let status = code.map_or_else(|| "killed by a signal".to_string(), |c| format!("exit code {c}"));
    Verdict::Failed(if why.is_empty() { status } else { format!("{why} ({status})") })
}

/// The kernel's reason, from the stderr warning or else from the end of the report line.
fn refusal<'a>(stdout: &'a str, stderr: &'a str) -> Option<&'a str> {
    const WARNING: &str = "writing to routing socket: ";
    let warned = stderr.lines().find_map(|l| l.split_once(WARNING).map(|(_, why)| why.trim()));
    // "<cmd> net|host <dest>: gateway <gw>[: <reason>]"; an IPv6 dest may end in "::", so the
    // reason is looked for only after the gateway.
    let reported = || {
        let line = stdout.lines().rev().find(|l| l.contains(": gateway "))?;
        let (_, after_gateway) = line.split_once(": gateway ")?;
        after_gateway.split_once(": ").map(|(_, why)| why.trim())
    };
    warned.or_else(reported).filter(|why| !why.is_empty())
}

/// `route`'s output as the `RouteBackend` contract wants it: adding over an existing route is
/// `AlreadyExists`, deleting a route that is gone succeeds.
pub fn result(request: Request, command: &str, out: &Output) -> io::Result<()> {
    let fail = |kind, why: &str| Err(io::Error::new(kind, format!("`{command}` failed: {why}")));
    match (judge(out.code, &out.stdout, &out.stderr), request) {
        (Verdict::Done, _) | (Verdict::NotInTable | Verdict::BadAddress(_), Request::Delete) => Ok(()),
        (Verdict::Exists, _) => fail(io::ErrorKind::AlreadyExists, "File exists"),
        (Verdict::NotInTable, Request::Add) => fail(io::ErrorKind::Other, "not in table"),
        (Verdict::BadAddress(addr), Request::Add) => fail(io::ErrorKind::NotFound, &format!("no interface {addr}")),
        (Verdict::Failed(why), _) => fail(io::ErrorKind::Other, &why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `route -n add -inet 198.19.1.0/24 -interface utun5` as route.c reports each outcome:
    /// the IPv4 dest loses its "/len" (getaddr cuts it), the gateway is the interface name.
    const ADDED: &str = "add net 198.19.1.0: gateway utun5\n";
    const EXISTS_OUT: &str = "add net 198.19.1.0: gateway utun5: File exists\n";
    const EXISTS_ERR: &str = "route: writing to routing socket: File exists\n";
    const UNREACH_OUT: &str = "add net 198.19.1.0: gateway utun5: Network is unreachable\n";
    const UNREACH_ERR: &str = "route: writing to routing socket: Network is unreachable\n";
    const DELETED: &str = "delete net 198.19.1.0: gateway utun5\n";
    const GONE_OUT: &str = "delete net 198.19.1.0: gateway utun5: not in table\n";
    const GONE_ERR: &str = "route: writing to routing socket: not in table\n";
    /// An interface that does not exist: getaddr falls back to a host name lookup and exits
    /// EX_NOHOST (68) before writing anything.
    const NO_IFACE_ERR: &str = "route: bad address: utun9\n";
    /// Without root: errx(EX_NOPERM, ...), exit 77.
    const NOT_ROOT_ERR: &str = "route: must be root to alter routing table\n";

    fn out(code: i32, stdout: &str, stderr: &str) -> Output {
        Output { code: Some(code), stdout: stdout.into(), stderr: stderr.into() }
    }

    #[test]
    fn the_kernels_answer_is_read_from_the_text_although_route_exits_0() {
        assert_eq!(judge(Some(0), ADDED, ""), Verdict::Done);
        assert_eq!(judge(Some(0), EXISTS_OUT, EXISTS_ERR), Verdict::Exists);
        assert_eq!(judge(Some(0), UNREACH_OUT, UNREACH_ERR), Verdict::Failed("Network is unreachable".into()));
        assert_eq!(judge(Some(0), DELETED, ""), Verdict::Done);
        assert_eq!(judge(Some(0), GONE_OUT, GONE_ERR), Verdict::NotInTable);
    }

    #[test]
    fn either_half_of_the_report_is_enough() {
        // stderr lost (or merged elsewhere): the report line still carries the reason.
        assert_eq!(judge(Some(0), EXISTS_OUT, ""), Verdict::Exists);
        assert_eq!(judge(Some(0), "", GONE_ERR), Verdict::NotInTable);
        // An IPv6 dest keeps its "/len" and may end in "::"; the reason comes after the gateway.
        let v6 = "add net fd00:d0c4:2511::/64: gateway utun5: File exists\n";
        assert_eq!(judge(Some(0), v6, ""), Verdict::Exists);
        assert_eq!(judge(Some(0), "add host fd00::: gateway utun5\n", ""), Verdict::Done);
    }

    #[test]
    fn non_zero_exits_fail_with_routes_words() {
        assert_eq!(judge(Some(68), "", NO_IFACE_ERR), Verdict::BadAddress("utun9".into()));
        assert_eq!(
            judge(Some(77), "", NOT_ROOT_ERR),
            Verdict::Failed("route: must be root to alter routing table (exit code 77)".into())
        );
        assert_eq!(judge(None, "", ""), Verdict::Failed("killed by a signal".into()));
    }

    #[test]
    fn results_follow_the_route_backend_contract() {
        let cmd = "/sbin/route -n add -inet 198.19.1.0/24 -interface utun5";
        assert!(result(Request::Add, cmd, &out(0, ADDED, "")).is_ok());
        let e = result(Request::Add, cmd, &out(0, EXISTS_OUT, EXISTS_ERR)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(e.to_string(), format!("`{cmd}` failed: File exists"));
        let e = result(Request::Add, cmd, &out(0, UNREACH_OUT, UNREACH_ERR)).unwrap_err();
        assert_eq!((e.kind(), e.to_string().ends_with("Network is unreachable")), (io::ErrorKind::Other, true));
        assert_eq!(result(Request::Add, cmd, &out(0, GONE_OUT, GONE_ERR)).unwrap_err().kind(), io::ErrorKind::Other);
        let del = "/sbin/route -n delete -inet 198.19.1.0/24 -interface utun5";
        assert!(result(Request::Delete, del, &out(0, DELETED, "")).is_ok());
        assert!(result(Request::Delete, del, &out(0, GONE_OUT, GONE_ERR)).is_ok(), "already gone is what we wanted");
        assert!(result(Request::Delete, del, &out(68, "", NO_IFACE_ERR)).is_ok(), "the interface took its routes");
        let e = result(Request::Add, cmd, &out(68, "", NO_IFACE_ERR)).unwrap_err();
        assert_eq!((e.kind(), e.to_string()), (io::ErrorKind::NotFound, format!("`{cmd}` failed: no interface utun9")));
        assert!(result(Request::Delete, del, &out(77, "", NOT_ROOT_ERR)).is_err());
    }
}

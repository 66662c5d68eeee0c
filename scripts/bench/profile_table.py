#!/usr/bin/env python3
"""Tables from one profile directory (scripts/bench/profile.sh): for the helper and the guest,
the top functions by self time, self time by kind of work, time by syscall (inclusive), and
syscalls per packet from the unsampled run.

    profile_table.py DIR            (reads DIR/{helper,guest}.folded, *.stat.tsv, *.iperf3.json, meta.tsv)

Folded stacks are inferno-collapse-perf's with `--all` (kernel frames end in `_[k]`), one line
per distinct stack: `frame;frame;…;leaf COUNT`. Percentages are of the side's samples."""

import json
import re
import sys
from collections import Counter
from pathlib import Path

ENDS = ("helper", "guest")
TOP = 25

# Self time by kind of work: the leaf frame's first matching rule wins (order matters: a
# spin lock taken inside the scheduler counts as locking).
KINDS = [
    ("copies (user↔kernel, memcpy)", r"copy_user|copy_to_user|copy_from_user|_copy_to_iter|_copy_from_iter|"
     r"copy_page_to_iter|copy_page_from_iter|memcpy|memmove|rep_movs|skb_copy_datagram|__memcpy|memset"),
    ("checksums", r"csum|checksum"),
    ("crypto", r"chacha|poly1305|aes|blake2|x25519|gcm|sha2|ring::"),
    ("locking, atomics, futex", r"spin_lock|spin_unlock|_raw_spin|mutex|futex|rwsem|__lll_|pthread_mutex|"
     r"parking_lot|queued_spin|osq_lock|rcu_read"),
    ("scheduler, wake-ups, idle", r"schedule|try_to_wake_up|finish_task_switch|pick_next|enqueue_task|dequeue_task|"
     r"update_curr|psi_|ttwu|select_task_rq|update_load|switch_mm|__switch_to|cpuidle|default_idle|"
     r"native_safe_halt|pv_native_safe_halt|arch_cpu_idle|set_next_entity|update_rq_clock|hrtimer"),
    ("syscall entry/exit, fd lookup, epoll", r"entry_SYSCALL|do_syscall_64|syscall_exit|exit_to_user_mode|"
     r"syscall_return|__x64_sys|fdget|fput|__fget|ep_poll|ep_send_events|ep_item_poll|ep_poll_callback|"
     r"__wake_up|__fdget|syscall_enter|audit|seccomp|srso_|retbleed|__x86_return_thunk|"
     r"clear_bhb|entry_|__sys_|sock_sendmsg|sock_recvmsg|sockfd_lookup|import_iovec|__import_iovec"),
    ("memory (alloc/free, skb life)", r"malloc|free|kmalloc|kfree|kmem_cache|slab|page_frag|alloc_skb|"
     r"__alloc_pages|skb_release|consume_skb|__build_skb|skb_free|get_page_from_freelist|"
     r"rmqueue|__slab|build_skb|napi_alloc|___slab_alloc|cfree|_int_free|_int_malloc"),
    ("tokio runtime", r"^tokio::|<tokio::|tokio::runtime|mio::"),
    ("Dockroute (engine, helper, guest)", r"dockroute|tun_rs|quinn_udp"),
]
KERNEL_REST = "rest of the kernel (network stack: IP, UDP, TCP, TUN, veth, bridge, GRO/GSO)"
USER_REST = "rest of user space (libc, std, …)"

# The frame under do_syscall_64 names the syscall; the wrappers differ by syscall and kernel.
SYSCALL_PREFIX = re.compile(r"^(?:__x64_sys_|__do_sys_|__se_sys_|__ia32_sys_|___?sys_|ksys_)")
SYSCALL_SKIP = {"x64_sys_call"}
SOFTIRQ = re.compile(r"^(?:__do_softirq|net_rx_action|do_softirq|handle_softirqs)(?:_\[k\])?$")


def read_folded(path):
    stacks = []
    for line in Path(path).read_text(errors="replace").splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    return stacks


def strip(frame):
    return frame[:-4] if frame.endswith("_[k]") else frame


def short(name, width=72):
    # Rust symbols: drop the hash and long generic arguments, keep the path.
    name = re.sub(r"::h[0-9a-f]{16}$", "", name)
    name = re.sub(r"<[^<>]{40,}>", "<…>", name)
    return name if len(name) <= width else name[: width - 1] + "…"


def kind_of(leaf):
    name = strip(leaf)
    for kind, pattern in KINDS:
        if re.search(pattern, name):
            return kind
    return KERNEL_REST if leaf.endswith("_[k]") else USER_REST


def syscall_of(frames):
    names = [strip(f) for f in frames]
    if "do_syscall_64" not in names:
        return None
    for f in names[names.index("do_syscall_64") + 1:]:
        if f in SYSCALL_SKIP:
            continue
        if f.startswith("exit_to_user_mode") or f.startswith("syscall_exit"):
            return "(on the way back to user space: reschedule, signals)"
        return SYSCALL_PREFIX.sub("", f)
    return "(syscall entry/exit itself)"


# Inclusive time of the stages a packet goes through (a sample counts for every stage on its
# stack, so rows overlap). Kernel stages run in this process's context: the softirq work a
# TUN write or a UDP send triggers (forwarding, the bridge, the receiver's TCP) is charged here.
STAGES = [
    ("TUN read (tun_do_read)", r"^tun_do_read$"),
    ("TUN write (tun_get_user)", r"^tun_get_user$"),
    ("UDP send (udp_sendmsg)", r"^udp_sendmsg$"),
    ("UDP receive (do_recvmmsg)", r"^do_recvmmsg$"),
    ("epoll_wait", r"^do_epoll_wait$|^__x64_sys_epoll_wait$"),
    ("softirq: packets received in this context (net_rx_action)", r"^net_rx_action$"),
    ("  IP forwarding (ip_forward)", r"^ip_forward$"),
    ("  bridge (br_handle_frame)", r"^br_handle_frame$"),
    ("  TCP receive (tcp_v4_rcv)", r"^tcp_v4_rcv$"),
    ("  UDP receive queueing (udp_rcv)", r"^(?:udp_rcv|__udp4_lib_rcv|udp_queue_rcv_one_skb)$"),
    ("kernel GSO segmentation (skb_segment)", r"^skb_segment$|^__udp_gso_segment$"),
    ("kernel GRO (dev_gro_receive)", r"^dev_gro_receive$"),
    ("user: tun-rs split of a TUN super-packet (gso_split, checksums)", r"tun_rs::platform::linux::offload::gso_split"),
    ("user: tun-rs GRO coalescing before a TUN write", r"tun_rs::platform::linux::offload::handle_gro"),
    ("user: the protocol core (Host/Guest/Session)", r"dockroute_engine::proto::"),
]


def where_copied(frames):
    """The nearest frame of ours (or tun-rs, quinn-udp) above a user-space copy, or the syscall
    above a kernel copy."""
    if frames[-1].endswith("_[k]"):
        return "kernel, in " + (syscall_of(frames) or "an interrupt")
    for f in reversed(frames[:-1]):
        if re.search(r"dockroute|tun_rs|quinn_udp", f):
            return "user, in " + short(f)
    return "user, elsewhere"


def pct(n, total):
    return f"{100.0 * n / total:5.1f} %" if total else "  n/a"


def side_tables(stacks, end, secs):
    # inferno weighs each stack by the sample's period: for cpu-clock, nanoseconds of CPU.
    total = sum(c for _, c in stacks)
    busy = f", {total / 1e9 / secs:.2f} of a core" if secs else ""
    out = [f"### {end}: {total / 1e9:.2f} s of CPU sampled{busy}"]
    if not total:
        return out + ["(no samples: was the process busy? see the record log)", ""]
    kernel = sum(c for f, c in stacks if f[-1].endswith("_[k]"))
    softirq = sum(c for f, c in stacks if any(SOFTIRQ.match(x) for x in f))
    out.append(f"kernel {pct(kernel, total)}, user {pct(total - kernel, total)}; "
               f"softirq work run in this process's context (inclusive) {pct(softirq, total)}")
    out += ["", "| self | function |", "|---:|---|"]
    leaves = Counter()
    for frames, c in stacks:
        leaves[frames[-1]] += c
    for leaf, c in leaves.most_common(TOP):
        kind = " [k]" if leaf.endswith("_[k]") else ""
        out.append(f"| {pct(c, total)} | `{short(strip(leaf))}`{kind} |")
    out += ["", "| self | kind of work (by the sampled function) |", "|---:|---|"]
    kinds = Counter()
    for frames, c in stacks:
        kinds[kind_of(frames[-1])] += c
    for kind, c in kinds.most_common():
        out.append(f"| {pct(c, total)} | {kind} |")
    out += ["", "| incl. | syscall (everything under it, softirq included) |", "|---:|---|"]
    calls = Counter()
    for frames, c in stacks:
        calls[syscall_of(frames) or "(not in a syscall: user space, or an interrupt)"] += c
    for call, c in calls.most_common(12):
        out.append(f"| {pct(c, total)} | {call} |")
    out += ["", "| incl. | stage (rows overlap) |", "|---:|---|"]
    for stage, pattern in STAGES:
        rx = re.compile(pattern)
        c = sum(n for frames, n in stacks if any(rx.search(strip(f)) for f in frames))
        out.append(f"| {pct(c, total)} | {stage} |")
    out += ["", "| self | copies, by where they are made |", "|---:|---|"]
    copies = Counter()
    copy_rx = re.compile(KINDS[0][1])
    for frames, c in stacks:
        if copy_rx.search(strip(frames[-1])):
            copies[where_copied(frames)] += c
    for where, c in copies.most_common(8):
        out.append(f"| {pct(c, total)} | {where} |")
    return out + [""]


def read_stat(path):
    counts = {}
    if not path.exists():
        return counts
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and not line.startswith("#"):
            try:
                counts[parts[2]] = float(parts[0])
            except ValueError:
                pass  # "<not counted>" / "<not supported>"
    return counts


def iperf_bytes(path):
    try:
        end = json.loads(path.read_text())["end"]
        return end["sum_received"]["bytes"], end["sum_received"]["bits_per_second"]
    except (OSError, ValueError, KeyError):
        return None, None


def syscall_table(d, meta):
    moved, bps = iperf_bytes(d / "syscalls.iperf3.json")
    if not moved:
        return ["(no unsampled run: syscalls.iperf3.json missing or empty)"]
    mtu = int(meta.get("dockroute_mtu") or 1400)
    # A full-sized TCP segment in the tunnel: MTU less IPv4 (20), TCP (20) and timestamps (12).
    packets = moved / (mtu - 52)
    out = [f"Unsampled TCP 1-stream run: {bps / 1e9:.2f} Gbit/s, {moved / 1e6:.0f} MB received, "
           f"≈ {packets:,.0f} data packets of {mtu - 52} bytes (MTU {mtu}); per data packet:", "",
           "| | helper | guest |", "|---|---:|---:|"]
    stats = {end: read_stat(d / f"{end}.stat.tsv") for end in ENDS}
    rows = ["raw_syscalls:sys_enter", "context-switches"] + sorted(
        {k for s in stats.values() for k in s if k.startswith("syscalls:")})
    for row in rows:
        vals = [stats[e].get(row) for e in ENDS]
        if not any(vals):
            continue
        label = "all syscalls" if row == "raw_syscalls:sys_enter" else row.replace("syscalls:sys_enter_", "")
        out.append(f"| {label} | " + " | ".join(f"{v / packets:.3f}" if v else "0" for v in vals) + " |")
    tc = [stats[e].get("task-clock") for e in ENDS]
    if all(tc):
        secs = float(meta.get("profile_seconds") or 0) or None
        out.append("| CPU µs per data packet | " + " | ".join(f"{v * 1e3 / packets:.2f}" for v in tc) + " |")
        if secs:
            out.append("| cores busy | " + " | ".join(f"{v / 1e3 / secs:.2f}" for v in tc) + " |")
    return out + [""]


def ping_table(d):
    path = d / "ping.txt"
    if not path.exists():
        return ["(no ping.txt)"]
    rtts = sorted(float(m) for m in re.findall(r"time=([0-9.]+) ms", path.read_text()))
    if not rtts:
        return ["(no replies)"]
    p50 = rtts[len(rtts) // 2] * 1e3
    out = [f"{len(rtts)} pings answered, 10 ms apart, RTT p50 {p50:.0f} µs; per ping (counted over the run and "
           "2 s after it, so idle keepalives are included):", "", "| | helper | guest |", "|---|---:|---:|"]
    stats = {end: read_stat(d / f"{end}.ping-stat.tsv") for end in ENDS}
    for key, label, scale in (("context-switches", "context switches (wake-ups)", 1),
                              ("raw_syscalls:sys_enter", "syscalls", 1), ("task-clock", "CPU µs", 1e3)):
        vals = [stats[e].get(key) for e in ENDS]
        out.append(f"| {label} | " + " | ".join("-" if v is None else f"{v * scale / len(rtts):.1f}" for v in vals) + " |")
    return out + [""]


def memory_table(d):
    path = d / "memory.tsv"
    if not path.exists():
        return ["(no memory.tsv)"]
    rows = [line.split("\t") for line in path.read_text().splitlines() if line.count("\t") >= 2]
    keys = [kv.partition("=")[0] for kv in rows[0][2:]] if rows else []
    out = ["| when | end | " + " | ".join(keys) + " |", "|---|---|" + "---:|" * len(keys)]
    for when, end, *kvs in rows:
        out.append(f"| {when} | {end} | " + " | ".join(kv.partition("=")[2] for kv in kvs) + " |")
    return out + [""]


def main():
    d = Path(sys.argv[1])
    meta = {}
    if (d / "meta.tsv").exists():
        for line in (d / "meta.tsv").read_text().splitlines():
            k, _, v = line.partition("\t")
            meta[k] = v
    out = [f"# Profile: Dockroute over {meta.get('profile_transport', 'udp')}, TCP 1 stream under iperf3",
           f"commit {meta.get('dockroute_commit', '?')}, {meta.get('nproc', '?')} CPUs "
           f"({meta.get('cpu_model', '?')}), kernel {meta.get('kernel', '?')}, "
           f"load {meta.get('loadavg_start', '?')}, {meta.get('date', '?')}, "
           f"busy-poll after traffic (DOCKROUTE_SPIN_US): {meta.get('spin_us', '?')}", ""]
    for end in ENDS:
        moved, bps = iperf_bytes(d / f"{end}.iperf3.json")
        if bps:
            out.append(f"While the {end} was sampled: {bps / 1e9:.2f} Gbit/s.")
    out.append("")
    event = (d / "helper.event.txt").read_text().strip() if (d / "helper.event.txt").exists() else "?"
    out.append(f"Sampled event: {event}, 999 Hz, call graphs from DWARF. With cpu-clock (no PMU, as in "
               "most VMs) a sample due while interrupts are off lands where they are turned back on: "
               "part of `_raw_spin_unlock_irqrestore`, `finish_task_switch` and `handle_softirqs` is the "
               "work just before them.")
    out.append("")
    secs = float(meta.get("profile_seconds") or 0)
    for end in ENDS:
        f = d / f"{end}.folded"
        out += side_tables(read_folded(f), end, secs) if f.exists() else [f"### {end}: no folded stacks", ""]
    out += ["### syscalls per packet", ""] + syscall_table(d, meta)
    out += ["### the round trip: per ping", ""] + ping_table(d)
    out += ["### memory (kB, from /proc/PID/status)", ""] + memory_table(d)
    print("\n".join(out))


if __name__ == "__main__":
    main()

# dockroute e2e udp echo
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1])))
print("ready", flush=True)
end = time.monotonic() + 3600
for _ in range(10**6):  # bounded in count and time; the harness kills it at drop anyway
    s.settimeout(max(end - time.monotonic(), 0.001))
    try: data, peer = s.recvfrom(65535)
    except socket.timeout: break
    s.sendto(data, peer)

# dockroute e2e udp client
import socket, sys
host, port, data, t = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(t)
try:
    s.connect((host, port)); s.send(data); print(s.recv(65535).hex())
except socket.timeout: sys.exit("no UDP reply from %s port %d within %ss" % (host, port, t))
except OSError as e: sys.exit("UDP exchange with %s port %d: %s" % (host, port, e))

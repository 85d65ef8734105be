"""Network namespaces for the nodes: one bridge, one veth pair per node.

Layout for run tag T (e.g. "vj3fa01"):
  bridge  T+"br"   on the host, address 10.77.X.1/24 (clients live here)
  netns   T+"n"+i  node i, address 10.77.X.(10+i)/24 on its veth T+"v"+i,
                   whose host end T+"h"+i is enslaved to the bridge.
The namespaces get no default route and the host does not forward
(net.ipv4.ip_forward is left as it is and the subnet is never routed
anywhere): traffic stays between the namespaces and the bridge. Partitions are
iptables DROP rules inside the namespaces, so they vanish with them.
"""

import ipaddress
import os
import re
import subprocess

TAG_RE = re.compile(r"^vj[0-9a-f]{5}$")
NETNS_RE = re.compile(r"^(vj[0-9a-f]{5})n\d+$")
LINK_RE = re.compile(r"^(vj[0-9a-f]{5})(br|h\d+)(@\S+)?$")


def sh(*args, check=True, capture=True, timeout=30):
    """Runs a command (no shell); returns stdout. Raises on failure if check."""
    res = subprocess.run(list(args), stdout=subprocess.PIPE if capture else None,
                         stderr=subprocess.PIPE, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(args), res.returncode,
                                                   res.stderr.strip()))
    return res.stdout if capture else ""


def new_tag():
    return "vj" + os.urandom(3).hex()[:5]


def _used_networks():
    nets = []
    for line in sh("ip", "-4", "-o", "addr", "show").splitlines():
        m = re.search(r"inet (\S+)", line)
        if m:
            nets.append(ipaddress.ip_interface(m.group(1)).network)
    for line in sh("ip", "-4", "route", "show", "table", "all").splitlines():
        first = line.split()[0] if line.split() else ""
        if first in ("default", "broadcast", "local", "unreachable"):
            continue
        try:
            nets.append(ipaddress.ip_network(first, strict=False))
        except ValueError:
            pass
    return nets


def choose_subnet(rng):
    """A 10.77.X.0/24 that no address or route on the host overlaps."""
    used = _used_networks()
    candidates = list(range(1, 255))
    rng.shuffle(candidates)
    for x in candidates:
        net = ipaddress.ip_network("10.77.%d.0/24" % x)
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free 10.77.X.0/24 subnet on this host")


class Network:
    def __init__(self, tag, subnet, n):
        self.tag = tag
        self.subnet = subnet
        self.n = n
        self.bridge = tag + "br"
        hosts = list(subnet.hosts())
        self.host_ip = str(hosts[0])
        self.ips = {i: str(hosts[9 + i]) for i in range(1, n + 1)}  # .10+i
        self.created = False

    def netns(self, i):
        return "%sn%d" % (self.tag, i)

    def create(self):
        self.created = True
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", "%s/%d" % (self.host_ip, self.subnet.prefixlen), "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        for i in range(1, self.n + 1):
            ns, host_end, node_end = self.netns(i), "%sh%d" % (self.tag, i), "%sv%d" % (self.tag, i)
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", node_end)
            sh("ip", "link", "set", node_end, "netns", ns)
            sh("ip", "link", "set", host_end, "master", self.bridge)
            sh("ip", "link", "set", host_end, "up")
            self.exec(i, "ip", "addr", "add", "%s/%d" % (self.ips[i], self.subnet.prefixlen),
                      "dev", node_end)
            self.exec(i, "ip", "link", "set", node_end, "up")
            self.exec(i, "ip", "link", "set", "lo", "up")
        for ip in self.ips.values():
            self.assert_contained(ip)

    def assert_contained(self, ip):
        """Refuses any address the host would not send over our own bridge."""
        if ipaddress.ip_address(ip) not in self.subnet:
            raise RuntimeError("%s is outside the test subnet %s" % (ip, self.subnet))
        route = sh("ip", "route", "get", ip)
        if ("dev %s " % self.bridge) not in route + " ":
            raise RuntimeError("%s does not route over %s: %s" % (ip, self.bridge, route.strip()))
        for i in range(1, self.n + 1):
            routes = self.exec(i, "ip", "-4", "route", "show")
            if "default" in routes:
                raise RuntimeError("namespace %s has a default route" % self.netns(i))

    def exec(self, i, *args, check=True):
        return sh("ip", "netns", "exec", self.netns(i), *args, check=check)

    # --- partitions -------------------------------------------------------

    def drop_from(self, i, sources):
        """Node i drops every packet from the nodes in `sources`."""
        for j in sources:
            self.exec(i, "iptables", "-w", "-A", "INPUT", "-s", self.ips[j], "-m", "comment",
                      "--comment", self.tag, "-j", "DROP")

    def apply_grudge(self, grudge):
        """grudge: {node: set of nodes it cannot hear from}."""
        for i, sources in grudge.items():
            if sources:
                self.drop_from(i, sorted(sources))

    def heal(self):
        for i in range(1, self.n + 1):
            self.exec(i, "iptables", "-w", "-F", "INPUT", check=False)

    def destroy(self):
        if not self.created:
            return
        for i in range(1, self.n + 1):
            # The host end first: a namespace lingers while a process holds it.
            sh("ip", "link", "del", "%sh%d" % (self.tag, i), check=False)
            sh("ip", "netns", "del", self.netns(i), check=False)
        sh("ip", "link", "del", self.bridge, check=False)
        self.created = False


def leftovers(live_tags=()):
    """Namespaces and links named like ours whose run is not live."""
    netns, links = [], []
    for line in sh("ip", "netns", "list", check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        m = NETNS_RE.match(name)
        if m and m.group(1) not in live_tags:
            netns.append(name)
    for line in sh("ip", "-o", "link", "show", check=False).splitlines():
        parts = line.split(":")
        if len(parts) < 2:
            continue
        name = parts[1].strip()
        m = LINK_RE.match(name)
        if m and m.group(1) not in live_tags:
            links.append(name.split("@")[0])
    return netns, links


def remove_leftovers(live_tags=()):
    netns, links = leftovers(live_tags)
    for ns in netns:
        sh("ip", "netns", "del", ns, check=False)
    for link in links:
        sh("ip", "link", "del", link, check=False)
    return netns, links

"""The namespace network and iptables partitions, for real (root only).

Skipped without root, `ip` or `iptables`. Creates a 2-node network with a
fresh tag, listens inside node 2's namespace, and checks that node 1 reaches it
before a partition, not during, and again after healing; everything is torn
down, and no namespace or link of the tag remains.
"""

import os
import random
import shutil
import subprocess
import sys
import unittest

from harness import net

PROBE = ("import socket,sys\ntry:\n socket.create_connection((sys.argv[1], 8000), timeout=1)\n"
         " print('open')\nexcept OSError:\n print('blocked')\n")


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("ip") and shutil.which("iptables"),
                     "needs root, iproute2 and iptables")
class NetTest(unittest.TestCase):

    def test_partition_and_heal(self):
        n = net.Network(net.new_tag(), net.choose_subnet(random.Random()), 2)
        srv = None
        try:
            n.create()
            srv = subprocess.Popen(["ip", "netns", "exec", n.netns(2), sys.executable, "-c",
                                    "import socket,time\ns=socket.socket()\n"
                                    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                                    "s.bind(('%s', 8000))\ns.listen(64)\ntime.sleep(60)\n"
                                    % n.ips[2]])

            def probe():
                return subprocess.run(["ip", "netns", "exec", n.netns(1), sys.executable, "-c",
                                       PROBE, n.ips[2]], capture_output=True, text=True,
                                      timeout=30).stdout.strip()
            for _ in range(50):  # until the listener is up (bounded)
                if probe() == "open":
                    break
            self.assertEqual(probe(), "open")
            n.apply_grudge({2: {1}})
            self.assertEqual(probe(), "blocked")
            n.heal()
            self.assertEqual(probe(), "open")
            with self.assertRaises(RuntimeError):
                n.assert_contained("10.0.0.1")  # outside the test subnet
        finally:
            if srv is not None:
                srv.kill()
                srv.wait()
            n.destroy()
        netns, links = net.leftovers()
        self.assertFalse([x for x in netns + links if x.startswith(n.tag)])


if __name__ == "__main__":
    unittest.main()

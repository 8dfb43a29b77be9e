"""The Redis key names every part of the Redis store shares: one prefix for
the deployment (``natter:``), and the live-node keys under it."""
P = "natter:"
NODE = P + "node:"       # + a node's id: present while that node lives (its TTL is renewed)

"""The transport layer: the seam (:mod:`.base`), its aiohttp implementation
(:mod:`.aiohttp`) and the policy in front of it (:mod:`.policy`)."""

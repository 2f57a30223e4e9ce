"""The HTTP layer: thin aiohttp handlers (classify, gather facts, ask the policy, act) and the
admin listener. May touch everything below it; decides nothing itself.
"""

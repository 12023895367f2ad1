"""The shared state store: spend and reservations in Redis, so several gateways share budgets.

Each budget period is a hash (``spent``, ``reserved``, ``warned``, ``rule``) plus a sorted set of
its holds (member ``id|amount``, score = expiry). ``reserve`` and ``settle`` are Lua scripts, run
with EVALSHA: Redis runs a script alone, so checking every budget and reserving in all of them is
one atomic step across every gateway. Holds of a gateway that died expire and are dropped by the
next ``reserve``. All keys share one hash tag, so the scripts also run on a Redis Cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from tollhouse.budget.store import Admission, Charge, State, StateError, shown_url

PREFIX = "tollhouse:{budget}:"
_STATE, _HOLDS = PREFIX + "state:", PREFIX + "holds:"

# KEYS: state, holds per charge. ARGV: now, expires, id, then per charge limit, amount, warn, rule,
# keep_until. Returns {0, failed index, spent, reserved} or {1, used, first_warn, ...}.
_RESERVE = """
local now, expires, id = ARGV[1], ARGV[2], ARGV[3]
local n = #KEYS / 2
local used = {}
for i = 1, n do
  local state, holds = KEYS[2 * i - 1], KEYS[2 * i]
  local a = 3 + (i - 1) * 5
  local limit, amount = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local stale = redis.call('ZRANGEBYSCORE', holds, '-inf', now)
  if #stale > 0 then
    local freed = 0
    for _, member in ipairs(stale) do
      freed = freed + tonumber(string.match(member, '|(%d+)$'))
    end
    redis.call('ZREMRANGEBYSCORE', holds, '-inf', now)
    redis.call('HINCRBY', state, 'reserved', string.format('%d', -freed))
  end
  local spent = tonumber(redis.call('HGET', state, 'spent') or '0')
  local reserved = tonumber(redis.call('HGET', state, 'reserved') or '0')
  if spent + reserved >= limit or spent + reserved + amount > limit then
    return {0, i - 1, string.format('%d', spent), string.format('%d', reserved)}
  end
  used[i] = spent + reserved + amount
end
local out = {1}
for i = 1, n do
  local state, holds = KEYS[2 * i - 1], KEYS[2 * i]
  local a = 3 + (i - 1) * 5
  redis.call('HINCRBY', state, 'reserved', ARGV[a + 2])
  redis.call('HSET', state, 'rule', ARGV[a + 4])
  redis.call('ZADD', holds, expires, id .. '|' .. ARGV[a + 2])
  redis.call('EXPIREAT', state, ARGV[a + 5])
  redis.call('EXPIREAT', holds, ARGV[a + 5])
  local first = 0
  if used[i] >= tonumber(ARGV[a + 3]) then
    first = redis.call('HSETNX', state, 'warned', '1')
  end
  table.insert(out, string.format('%d', used[i]))
  table.insert(out, first)
end
return out
"""

# KEYS: state, holds per charge. ARGV: id, then per charge amount, actual, rule, keep_until.
_SETTLE = """
local id = ARGV[1]
for i = 1, #KEYS / 2 do
  local state, holds = KEYS[2 * i - 1], KEYS[2 * i]
  local a = 1 + (i - 1) * 4
  if redis.call('ZREM', holds, id .. '|' .. ARGV[a + 1]) == 1 then
    redis.call('HINCRBY', state, 'reserved', string.format('%d', -tonumber(ARGV[a + 1])))
  end
  if tonumber(ARGV[a + 2]) > 0 then
    redis.call('HINCRBY', state, 'spent', ARGV[a + 2])
    redis.call('HSETNX', state, 'rule', ARGV[a + 3])
    if redis.call('TTL', state) < 0 then redis.call('EXPIREAT', state, ARGV[a + 4]) end
  end
end
return 1
"""


def _keys(charges: Sequence[Charge]) -> list[str]:
    keys = []
    for charge in charges:
        name = f"{charge.key}@{charge.period}"
        keys += [_STATE + name, _HOLDS + name]
    return keys


class RedisStore:
    """Budgets in the Redis at ``url`` (``redis://host:port/db``)."""

    def __init__(self, url: str) -> None:
        try:
            self._redis = redis.Redis.from_url(
                url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5
            )
        except ValueError:
            shown = shown_url(url)
            raise StateError(f"bad --state URL {shown}: use redis://host:port/db") from None
        self.url = shown_url(url)  # for messages: never the password
        self._reserve = self._redis.register_script(_RESERVE)
        self._settle = self._redis.register_script(_SETTLE)

    def ping(self) -> None:
        """Raise StateError unless Redis answers."""
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            raise StateError(f"cannot reach Redis at {self.url}: {exc}") from exc

    def reserve(
        self, hold_id: str, charges: Sequence[Charge], now: float, expires: float
    ) -> Admission:
        args: list[Any] = [repr(now), repr(expires), hold_id]
        for c in charges:
            args += [c.limit, c.amount, c.warn, c.rule, int(c.keep_until)]
        out = self._call(self._reserve, _keys(charges), args)
        if int(out[0]) == 0:
            return Admission(False, failed=int(out[1]), spent=int(out[2]), reserved=int(out[3]))
        rest = out[1:]
        used = tuple(int(v) for v in rest[0::2])
        first = tuple(bool(int(v)) for v in rest[1::2])
        return Admission(True, used=used, first_warn=first)

    def settle(self, hold_id: str, charges: Sequence[Charge], actual: Sequence[int]) -> None:
        args: list[Any] = [hold_id]
        for charge, units in zip(charges, actual, strict=True):
            args += [charge.amount, units, charge.rule, int(charge.keep_until)]
        self._call(self._settle, _keys(charges), args)

    def states(self, now: float) -> list[State]:
        try:
            names = sorted(self._redis.scan_iter(match=_STATE + "*", count=500))
            pipe = self._redis.pipeline(transaction=False)
            for name in names:
                pipe.hgetall(name)
                pipe.zrangebyscore(_HOLDS + name[len(_STATE) :], f"({now!r}", "+inf")
            replies = pipe.execute()
        except redis.RedisError as exc:
            raise StateError(f"cannot read budgets from Redis at {self.url}: {exc}") from exc
        out = []
        for name, fields, holds in zip(names, replies[0::2], replies[1::2], strict=True):
            key, _, period = name[len(_STATE) :].rpartition("@")
            reserved = sum(int(member.rpartition("|")[2]) for member in holds)
            spent = int(fields.get("spent", 0))
            out.append(State(key, period, fields.get("rule", key), spent, reserved))
        return out

    def close(self) -> None:
        self._redis.close()

    def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return script(keys=keys, args=args)
        except redis.RedisError as exc:
            raise StateError(f"budget store at {self.url} failed: {exc}") from exc

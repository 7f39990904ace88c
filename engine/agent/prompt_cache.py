"""Prompts ready before they are needed: synthesised speech cached by content.

A prompt's audio depends only on its text and on how it is spoken, so it is
kept under a key made of both: text + engine (provider/model) + voice +
settings + sample rate (:func:`prompt_key`). The first time a text is
needed it is said as usual and then synthesised into the cache (after it
played, so that the extra synthesis never delays speech a caller waits for);
every later time, by any call, its first audio is a cache read.

Where the audio is kept (``VOXFLOW_PROMPT_CACHE``):

- a directory (the default, ``.voxflow/prompt-cache``): one machine, shared by
  every agent on it, kept across restarts;
- ``redis://...``: several agents on several machines (the voice bus's Redis);
- ``off``: nothing kept.

Either way a bounded memory LRU sits in front (``memory_bytes``), and the
store is bounded too (``VOXFLOW_PROMPT_CACHE_MB``, default 256 MB): the least
recently used audio goes first. Hits and misses are counted (:class:`CacheStats`,
on ``/metrics`` through :class:`PromptCacheCollector`).

Filling it ahead: :func:`engine.language.upcoming.graph_prompts` lists every text of a flow version
with no ``${}`` (what its nodes that talk to the caller may say: messages,
prompts, reprompts...), and :meth:`PromptCache.prepare` synthesises the ones not
cached yet; ``voxflow dev`` does so when a version is loaded, ``voxflow agent``
whenever it is quiet, from the texts the call's context brings (the server's
``/api/internal/call-context``; engine.agent.next_prompts). While the caller
has the turn, the agent prepares what the call may say next, templated text
filled in with the call's variables (engine.agent.next_prompts).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from livekit.agents import tts as agents_tts

log = logging.getLogger(__name__)
CACHE_ENV = "VOXFLOW_PROMPT_CACHE"
SIZE_ENV = "VOXFLOW_PROMPT_CACHE_MB"
DEFAULT_DIR = Path(".voxflow") / "prompt-cache"
DEFAULT_MB = 256
_SETTING_FIELDS = (
    "voice",
    "voice_id",
    "model",
    "model_id",
    "language",
    "encoding",
    "voice_settings",
    "speed",
    "instructions",
    "rate",
    "pitch",
    "name",
)


# ---- keys ---------------------------------------------------------------------------


def engine_settings(engine: agents_tts.TTS) -> dict[str, Any]:
    """What makes ``engine`` sound the way it does (never its credentials)."""
    found: dict[str, Any] = {
        "provider": engine.provider,
        "model": engine.model,
        "rate": engine.sample_rate,
        "channels": engine.num_channels,
    }
    for source in (getattr(engine, "voice", None), getattr(engine, "_opts", None)):
        if source is None:
            continue
        for name in _SETTING_FIELDS:
            value = getattr(source, name, None)
            if value is not None and not callable(value):
                found[f"{type(source).__name__}.{name}"] = repr(value)
    return found


def prompt_key(text: str, engine: agents_tts.TTS) -> str:
    content = json.dumps({"text": text, "engine": engine_settings(engine)}, sort_keys=True)
    return hashlib.sha256(content.encode()).hexdigest()


# ---- stores ---------------------------------------------------------------------------


class PromptStore(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, pcm: bytes) -> None: ...


class NoStore:
    async def get(self, key: str) -> bytes | None:
        return None

    async def put(self, key: str, pcm: bytes) -> None:
        return None


class DiskStore:
    """Files ``<key>.pcm`` in ``directory``; the least recently read go first."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)

    async def get(self, key: str) -> bytes | None:
        return await asyncio.to_thread(self._read, key)

    async def put(self, key: str, pcm: bytes) -> None:
        await asyncio.to_thread(self._write, key, pcm)

    def _read(self, key: str) -> bytes | None:
        path = self.directory / f"{key}.pcm"
        try:
            data = path.read_bytes()
        except OSError:
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used
        return data

    def _write(self, key: str, pcm: bytes) -> None:
        path = self.directory / f"{key}.pcm"
        partial = path.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(pcm)
        partial.replace(path)  # another agent reading sees all of it or nothing
        self._evict()

    def _evict(self) -> None:
        entries = []
        for path in self.directory.glob("*.pcm"):
            with contextlib.suppress(OSError):
                status = path.stat()
                entries.append((status.st_mtime, status.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size


class RedisStore:
    """Audio under ``voxflow:prompt:<key>`` in Redis, shared by agents on any machine;
    a sorted set of last use bounds the total to ``max_bytes``."""

    PREFIX = "voxflow:prompt:"
    USED = "voxflow:prompt-cache:used"
    SIZES = "voxflow:prompt-cache:sizes"

    def __init__(self, url: str, max_bytes: int) -> None:
        import redis.asyncio as aioredis

        self.url = url
        self.max_bytes = max_bytes
        self._redis = aioredis.Redis.from_url(url)

    async def get(self, key: str) -> bytes | None:
        data: Any = await self._redis.get(self.PREFIX + key)
        if data is not None:
            await self._redis.zadd(self.USED, {key: time.time()})
        return bytes(data) if data is not None else None

    async def put(self, key: str, pcm: bytes) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self.PREFIX + key, pcm)
            pipe.zadd(self.USED, {key: time.time()})
            pipe.hset(self.SIZES, key, len(pcm))
            await pipe.execute()
        await self._evict()

    async def _evict(self) -> None:
        stored: Any = await self._redis.hgetall(self.SIZES)
        sizes = {_text(k): int(v) for k, v in stored.items()}
        total = sum(sizes.values())
        if total <= self.max_bytes:
            return
        used: Any = await self._redis.zrange(self.USED, 0, -1)
        for raw in used:
            if total <= self.max_bytes:
                break
            key = _text(raw)
            await self._redis.delete(self.PREFIX + key)
            await self._redis.zrem(self.USED, key)
            await self._redis.hdel(self.SIZES, key)
            total -= sizes.get(key, 0)

    async def aclose(self) -> None:
        await self._redis.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def store_from_env(env: Mapping[str, str] | None = None, *, default_dir: Path = DEFAULT_DIR) -> PromptStore:
    """The store ``VOXFLOW_PROMPT_CACHE`` names: a directory (default), redis://, or off."""
    env = os.environ if env is None else env
    where = env.get(CACHE_ENV, "").strip()
    size = int(float(env.get(SIZE_ENV, "") or DEFAULT_MB) * 1024 * 1024)
    if where.lower() in ("off", "none", "0", "false"):
        return NoStore()
    if where.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(where, size)
    return DiskStore(Path(where) if where else default_dir, size)


# ---- the cache ------------------------------------------------------------------------


@dataclass
class CacheStats:
    """``hits`` / ``misses``: prompts said from the cache or synthesised as they were said;
    ``prepared``: synthesised ahead (a version loaded, a prompt after it played, what
    comes next); of those, ``prepared_next`` while the caller had the turn
    (engine.agent.next_prompts), and ``skipped_next`` texts the turn ended before."""

    hits: int = 0
    misses: int = 0
    prepared: int = 0
    prepared_next: int = 0
    skipped_next: int = 0

    @property
    def hit_rate(self) -> float:
        asked = self.hits + self.misses
        return self.hits / asked if asked else 0.0


class PromptCache:
    """Synthesised prompts by content, over a store, with a memory LRU in front."""

    def __init__(self, store: PromptStore | None = None, *, memory_bytes: int = 32 * 1024 * 1024) -> None:
        self.store: PromptStore = store if store is not None else NoStore()
        self.memory_bytes = memory_bytes
        self.stats = CacheStats()
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._memory_size = 0
        self._making: dict[str, asyncio.Future[bytes | None]] = {}

    # ---- reading ----

    async def lookup(self, text: str, engine: agents_tts.TTS) -> bytes | None:
        """The audio of ``text`` as ``engine`` speaks it (16-bit mono PCM at its rate),
        if it is cached; counted as a hit or a miss."""
        pcm = await self._find(prompt_key(text, engine))
        if pcm is None:
            self.stats.misses += 1
        else:
            self.stats.hits += 1
        return pcm

    async def _find(self, key: str) -> bytes | None:
        pcm = self._memory.get(key)
        if pcm is not None:
            self._memory.move_to_end(key)
            return pcm
        try:
            pcm = await self.store.get(key)
        except Exception as error:  # noqa: BLE001 - a cache that is down is only slower
            log.warning("the prompt cache could not be read: %s", error)
            return None
        if pcm is not None:
            self._remember(key, pcm)
        return pcm

    def _remember(self, key: str, pcm: bytes) -> None:
        if len(pcm) > self.memory_bytes:
            return
        old = self._memory.pop(key, None)
        self._memory_size -= len(old) if old is not None else 0
        self._memory[key] = pcm
        self._memory_size += len(pcm)
        while self._memory_size > self.memory_bytes:
            _, dropped = self._memory.popitem(last=False)
            self._memory_size -= len(dropped)

    async def _keep(self, key: str, pcm: bytes) -> None:
        self._remember(key, pcm)
        try:
            await self.store.put(key, pcm)
        except Exception as error:  # noqa: BLE001
            log.warning("the prompt cache could not be written: %s", error)

    async def _synthesise(self, text: str, engine: agents_tts.TTS, key: str) -> bytes | None:
        chunks: list[bytes] = []
        try:
            async with engine.synthesize(text) as stream:
                async for audio in stream:
                    chunks.append(bytes(audio.frame.data))
        except Exception as error:  # noqa: BLE001 - it is said live instead, as before
            log.warning("could not synthesise %r for the prompt cache: %s", text[:60], error)
            return None
        pcm = b"".join(chunks)
        if pcm:
            await self._keep(key, pcm)
        return pcm

    def _done_making(self, key: str, _future: object) -> None:
        self._making.pop(key, None)

    # ---- ahead of time ----

    async def prepare(self, texts: Iterable[str], engine: agents_tts.TTS) -> int:
        """Synthesise the ``texts`` not cached yet, one at a time; returns how many."""
        made = 0
        for text in texts:
            key = prompt_key(text, engine)
            if key in self._making or await self._find(key) is not None:
                continue
            making = asyncio.ensure_future(self._synthesise(text, engine, key))
            self._making[key] = making
            making.add_done_callback(functools.partial(self._done_making, key))
            if await making:
                made += 1
                self.stats.prepared += 1
        return made


class PromptCacheCollector:
    """The cache's counters for a Prometheus registry (``/metrics``)."""

    def __init__(self, cache: PromptCache) -> None:
        self.cache = cache

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        stats = self.cache.stats
        yield CounterMetricFamily(
            "voxflow_prompt_cache_hits", "Prompts whose audio was cached.", value=stats.hits
        )
        yield CounterMetricFamily(
            "voxflow_prompt_cache_misses", "Prompts synthesised when they were needed.", value=stats.misses
        )
        yield CounterMetricFamily(
            "voxflow_prompt_cache_prepared", "Prompts synthesised ahead of time.", value=stats.prepared
        )
        yield CounterMetricFamily(
            "voxflow_prompt_cache_prepared_next",
            "Prompts the call could say next, synthesised while the caller had the turn.",
            value=stats.prepared_next,
        )
        yield CounterMetricFamily(
            "voxflow_prompt_cache_skipped_next",
            "Prompts the call could say next, not prepared because the turn ended first.",
            value=stats.skipped_next,
        )
        yield GaugeMetricFamily(
            "voxflow_prompt_cache_hit_ratio",
            "Hits over hits and misses since the start.",
            value=stats.hit_rate,
        )


_shared: PromptCache | None = None


def shared_cache(env: Mapping[str, str] | None = None) -> PromptCache:
    """The process's cache, over the store the environment names (made on first use)."""
    global _shared
    if _shared is None:
        _shared = PromptCache(store_from_env(env))
    return _shared

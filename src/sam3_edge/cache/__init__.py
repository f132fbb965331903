"""Sharded teacher-feature cache: ``open_cache(dir) -> TeacherCache`` (keys, meta, load, verify)."""

from sam3_edge.cache.store import CacheError, TeacherCache, open_cache

__all__ = ["CacheError", "TeacherCache", "open_cache"]

"""Who is asking and what they may see.

Owns API tokens and the principal behind a request (:mod:`.tokens`) and every visibility rule:
which roles see which demands and which of their fields (:mod:`.policy`).

May import: :mod:`service.storage`, :mod:`service.schemas` and :mod:`matcher`'s records and
filters. Not the jobs, views or routers.
"""

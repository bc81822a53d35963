"""One router per resource (demands, capabilities, partners, matching, feedback, imports,
conference, landscape, tokens, health) and the web pages; `create_app` includes them all.

Routers may import every lower part of the service (storage, auth, views, jobs, deps, matching,
importer); nothing below imports a router.
"""

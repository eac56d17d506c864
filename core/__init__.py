"""The site's shared plumbing: API helpers, auth caches, the job-request helper and the
commands that orchestrate several apps (``serve``, ``demo_setup``, ``makemessages``)."""

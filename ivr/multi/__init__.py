"""Several controller processes per Asterisk (docs/perf/multi.md).

- ``slots``: N slots, one Stasis application each, owned by holding an
  exclusive ``flock`` on ``<state_dir>/<instance>/controllers/slot-<i>.lock``;
- ``adopter``: every slot owner watches the other slots' locks and moves a dead
  owner's callers into its own application (``POST /channels/{id}/move``);
- ``workers``: ``ivr serve`` starts and supervises the N-1 voice workers
  (``ivr serve --voice-worker``).
"""

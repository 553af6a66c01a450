"""The user-facing API: :class:`~kubeasync.Client`, the generic
:class:`~kubeasync.ResourceApi` (core verbs) and the capability mixins
(:mod:`kubeasync.api.capabilities`)."""

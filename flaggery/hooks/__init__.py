"""Webhooks out: the admin process delivers change-log revisions to subscribed URLs, signed
(flaggery.hooks.signing), in revision order, at least once (flaggery.hooks.sending)."""

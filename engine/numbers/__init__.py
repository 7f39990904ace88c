"""Phone numbers on a carrier's account: search, buy, point at this server, list, release.

Each carrier is one module (:mod:`engine.numbers.telnyx_numbers`,
:mod:`engine.numbers.twilio_numbers`) behind the :class:`~engine.numbers.model.Carrier`
protocol, driven through the carrier's own SDK.
"""

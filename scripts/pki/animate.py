"""Runs `certomancer animate` with a clock of whole seconds.

certomancer stamps OCSP responses (producedAt, thisUpdate, nextUpdate) with the current time,
microseconds included. RFC 6960 allows fractional GeneralizedTime, but NSS does not
(DER_GeneralizedTimeToTime takes no '.'): it drops such responses as malformed, and poppler
22.12's pdfsig then reports "Unknown issue with Certificate or corrupted data." for every
certificate with an OCSP URL, because it reads NSS's leftover error code even when the chain
check succeeded. Whole seconds make the responses readable to NSS, so pdfsig's certificate
verdict can be asserted in full. `_now` is a private name of the pinned certomancer 0.16.0
(scripts/requirements.txt); it is used only when a request carries no fake time.

Usage: python animate.py <certomancer arguments…>   (as `certomancer …`)
"""

from datetime import datetime, timezone

import certomancer.cli
import certomancer.integrations.animator as animator


def whole_seconds_now() -> datetime:
    return datetime.now(tz=timezone.utc).replace(microsecond=0)


animator._now = whole_seconds_now

if __name__ == "__main__":
    certomancer.cli.cli()

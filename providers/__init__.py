"""Gift-card provider adapters and the registry the bot builds them from."""

from __future__ import annotations

from providers.base import Provider
from providers.cardpluspay import CardPlusPayProvider
from providers.giftronaut import GiftronautProvider
from providers.runa import RunaProvider
from providers.sandbox import SandboxProvider
from providers.ugiftme import UGiftMeProvider

# REWARDBOT_PROVIDERS names → adapter classes. Aliases map to the same class and are
# enabled once, under the class's own name (``wegift`` is ``runa``).
PROVIDERS: dict[str, type[Provider]] = {
    "sandbox": SandboxProvider,
    "runa": RunaProvider,
    "wegift": RunaProvider,
    "ugiftme": UGiftMeProvider,
    "giftronaut": GiftronautProvider,
    "cardpluspay": CardPlusPayProvider,
}

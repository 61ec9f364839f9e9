"""The one base of every vendor's private JSON models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class VendorModel(BaseModel):
    """A piece of a vendor's JSON answer, as an adapter reads it before mapping it to the
    domain models of :mod:`providers.base`.

    * ``extra="ignore"``: vendors add fields without notice; an answer is read for the fields
      we use and the rest is left alone, so a new field never breaks an order.
    * ``hide_input_in_errors=True``: vendor answers hold redemption codes, links and PINs, and
      a validation error must never carry them into a log or a message.
    * ``frozen=True``: an answer is a fact we read, never one we edit.

    Vendors add what their JSON needs on top (uGift.me's ``populate_by_name``).
    """

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True, frozen=True)

"""Money, computed the same way everywhere a price is shown (engine, central, driver, ticket)."""

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
WATT_HOUR = Decimal("0.001")


def cost(kwh, price):
    """EUR for ``kwh`` at ``price`` EUR/kWh, rounded half-up to the cent."""
    return float((Decimal(str(kwh)) * Decimal(str(price))).quantize(CENT, rounding=ROUND_HALF_UP))


def energy(kwh):
    """kWh rounded to the watt-hour, so that sums of ticks do not drift."""
    return float(Decimal(str(kwh)).quantize(WATT_HOUR, rounding=ROUND_HALF_UP))

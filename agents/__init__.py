"""The OpenGym components, one Faust app per module: ``faust -A agents.<component> worker``."""

from streams import tuning

tuning.apply()

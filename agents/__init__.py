"""The OpenGym components, one Faust app per module: ``faust -A agents.<component> worker``."""

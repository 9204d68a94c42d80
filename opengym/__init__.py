"""OpenGym, the default system built on the library: its components are in ``agents/``, its topic
catalog in ``topics/``, its contracts in ``schemas/`` and their generated models in :mod:`opengym.models`;
``agents/system.py`` declares it."""

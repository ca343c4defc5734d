"""visualsearch: self-hosted visual search for image libraries.

Data flows one way: ingest -> decode -> embed -> store/index -> query -> rank.
Each step lives in its own sub-package (``ingest``, ``models``, ``catalog``,
``index``, ``search``) and the ``cli`` ties them together.
"""

__version__ = "0.1.0"

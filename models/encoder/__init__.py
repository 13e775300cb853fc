"""The Index-to-Tabular encoder: codes a mention the way a coder does.

For each asserted mention it finds the Alphabetic Index main term, follows the subterms the
note documents, then verifies the code in the Tabular List, descending to the billable code
whose distinguishing words the note states (else the unspecified child, or the initial
encounter). Every code carries the path that led to it. Without an imported Index the same
descent starts from the tabular categories of the other generators' best codes.

* :mod:`.words`: word keys (inflections meet), the note's context and the data file;
* :mod:`.index_tree`: the Index as an in-memory tree (derived from the KB, cached on it);
* :mod:`.tabular`: the tabular descent;
* :mod:`.generator`: the ``encoder`` candidate generator (``models.registry``).
"""

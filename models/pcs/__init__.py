"""The ICD-10-PCS builder: codes built axis by axis from procedure statements of inpatient
notes, validated against the PCS tables of the knowledge base.

* :mod:`.knowledge` -- :func:`load_knowledge`, the one loader of
  ``models/resources/pcs_terms.yaml`` (the words and the axis values they stand for)
* :mod:`.tables` -- :class:`PcsTables`, the valid combinations (order file or tables XML)
* :mod:`.statements` -- where a note states its procedures
* :mod:`.builder` -- :class:`PcsBuilder`, the axis-by-axis construction
* :mod:`.coder` -- :class:`PcsCoder`, the rule coder ``pcs`` of ``models.registry``
"""

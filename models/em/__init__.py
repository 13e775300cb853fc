"""The E/M level calculator: office/outpatient (AMA 2021), hospital inpatient/observation and
emergency department (AMA 2023) visit levels from medical decision making or time, as a rule
coder (``models.registry`` kind ``rule_coder``, name ``em``). Its knowledge lives in
``models/resources/em_rules.yaml``."""

from clinicode.models.em.coder import EMCoder, Level, decide

__all__ = ["EMCoder", "Level", "decide"]

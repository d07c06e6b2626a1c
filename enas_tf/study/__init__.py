"""The search study: ENAS against random search at an equal budget (bin/study_search).

``plan`` says which runs a study holds and where; ``runner`` runs the
unfinished ones as subprocesses of the search binaries; ``scoring`` scores
every retrained arc with each search's shared weights; ``report`` writes
report.md, report.json and the pictures.
"""

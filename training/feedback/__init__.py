"""Learning from ratings: export -> retrain (TRL) -> gate -> record -> promote.

python -m training feedback export   --db FILE --out DIR     (training.feedback.export)
python -m training feedback run      --db FILE               (training.feedback.loop)
python -m training feedback simulate                          (training.feedback.simulate)
"""

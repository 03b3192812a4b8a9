"""Datasets: training data from call logs and feedback, the training formats, the dataset builder
and the one export service (records in, training files and Export rows out)."""

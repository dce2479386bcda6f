"""The scheduler's work: each batch's summaries folded, hours summarised from the log where they
must be, windows computed and their points stored, the error stream advanced, maintenance."""

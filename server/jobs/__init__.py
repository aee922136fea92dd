"""The work behind the routes and commands: the model, embeddings and their cache, decoding,
proposals, automatic runs, training, exports and the folder scan.

Jobs reach the database only through ``server.store``'s functions; they never import Flask.
"""

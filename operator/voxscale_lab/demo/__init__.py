"""`voxscale demo`: show voxscale doing its job on the example SpeechCluster."""

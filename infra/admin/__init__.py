"""The way in for operators and deploys: the Docker API endpoint, its tunnel and its client."""

package processor

// CheckTopics checks the topic layout without changing anything.
var CheckTopics = checkTopics

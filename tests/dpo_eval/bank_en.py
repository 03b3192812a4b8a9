"""English prompts with a good answer and a plausibly worse answer to the same prompt (see bank_zh)."""

GENERAL = [
    ("List five different fruits.", "Apple, banana, orange, pineapple, strawberry.", "Apple and banana."),
    ("Explain why the sky is blue.",
     "Sunlight contains all colours. As it passes through the atmosphere, the shorter blue wavelengths are scattered by air "
     "molecules much more than the longer red ones (Rayleigh scattering), so blue light reaches our eyes from every direction "
     "of the sky.",
     "The sky is blue because it reflects the ocean."),
    ("What is the capital of Australia?", "The capital of Australia is Canberra.", "The capital of Australia is Sydney."),
    ("Write a haiku about autumn.", "Crimson maples fall\nwhispering to the cold earth\nsummer says goodbye", "Autumn leaves are falling down, it is cold."),
    ("How do I reverse a list in Python?",
     "Use slicing, `my_list[::-1]`, to get a reversed copy, or call `my_list.reverse()` to reverse the list in place. "
     "`reversed(my_list)` gives an iterator if you only need to loop backwards.",
     "You can loop over it backwards and append to a new list."),
    ("Summarize the plot of Romeo and Juliet in two sentences.",
     "Two young lovers from the feuding Montague and Capulet families marry in secret in Verona. A chain of misunderstandings "
     "leads both to take their own lives, which finally reconciles their families.",
     "Romeo and Juliet fall in love and it ends badly."),
    ("Give three tips for a job interview.",
     "1. Research the company and the role so you can explain why you want it.\n2. Prepare short stories that show your skills "
     "(situation, action, result).\n3. Ask thoughtful questions at the end — it shows genuine interest.",
     "Be on time and dress well."),
    ("What causes rain?",
     "Rain forms when water vapour in rising air cools and condenses into tiny cloud droplets. The droplets collide and merge; "
     "once they are too heavy for the air currents to hold up, they fall as rain.",
     "Rain comes from clouds."),
    ("Translate 'good morning' into French.", "Bonjour.", "Bonsoir."),
    ("What is 15% of 80?", "15% of 80 is 12.", "15% of 80 is 15."),
    ("Explain the difference between weather and climate.",
     "Weather is the state of the atmosphere at a particular place and time — today's rain or tomorrow's heat. Climate is the "
     "average pattern of weather in a region over a long period, typically 30 years or more.",
     "Weather and climate mean basically the same thing."),
    ("Write a short thank-you note to a colleague who helped me with a project.",
     "Hi Sam, thank you so much for jumping in on the quarterly report last week. Your help with the data cleanup saved us days, "
     "and the final version is much stronger because of it. I owe you a coffee!",
     "Thanks for the help."),
    ("What are the benefits of regular exercise?",
     "Regular exercise strengthens the heart and lungs, helps control weight, builds muscle and bone density, improves sleep, "
     "and lowers the risk of diabetes and depression.",
     "It's good for your health."),
    ("Define photosynthesis.",
     "Photosynthesis is the process by which green plants use light energy, water and carbon dioxide to produce glucose and "
     "release oxygen.",
     "It is how plants eat."),
    ("How many continents are there? Name them.",
     "There are seven continents: Africa, Antarctica, Asia, Australia (Oceania), Europe, North America and South America.",
     "There are six continents."),
    ("Recommend a good book for learning statistics.",
     "'The Art of Statistics' by David Spiegelhalter is a great start: it explains the core ideas through real questions "
     "instead of formulas. For a more hands-on text, try 'OpenIntro Statistics', which is free online.",
     "Any statistics textbook should be fine."),
    ("What does HTTP stand for?", "HTTP stands for HyperText Transfer Protocol.", "High Tech Transfer Protocol."),
    ("Describe how to make a cup of tea.",
     "Boil fresh water, warm the cup, then pour the water over a tea bag. Let it steep for three to five minutes, remove the bag, "
     "and add milk or sugar to taste.",
     "Put the tea bag in water."),
    ("Why do cats purr?",
     "Cats purr mostly when they are content, but also when stressed or injured. The vibration comes from rapid twitching of "
     "the larynx muscles, and its low frequency may even help bones and tissue heal.",
     "Because they are happy."),
    ("Write a SQL query to count the rows in a table called orders.", "```sql\nSELECT COUNT(*) FROM orders;\n```", "SELECT * FROM orders;"),
    ("What is the boiling point of water at sea level?", "At sea level, water boils at 100 °C (212 °F).", "About 90 °C."),
    ("Give me a synonym for 'happy'.", "Joyful.", "Fine."),
    ("Explain what a neural network is to a 10-year-old.",
     "Imagine a huge team of tiny helpers passing notes. Each helper looks at a small clue, decides how important it is, and "
     "passes its guess on. After practising on thousands of examples, the team gets really good at things like telling cats "
     "from dogs in photos.",
     "It is a computer brain."),
    ("Who wrote 'Pride and Prejudice'?", "Jane Austen wrote Pride and Prejudice, first published in 1813.", "Charlotte Brontë."),
    ("How can I improve my sleep?",
     "Keep a regular schedule, avoid screens for an hour before bed, keep the bedroom cool and dark, and skip caffeine after "
     "lunch. A short wind-down routine, like reading, also helps.",
     "Go to bed earlier."),
    ("What is the largest planet in our solar system?", "Jupiter is the largest planet in our solar system.", "Saturn."),
    ("Suggest a name for a bakery.", "Rise & Shine Bakery", "Bread Shop"),
    ("Why is regular software testing important?",
     "Tests catch regressions early, when they are cheap to fix, document how the code is meant to behave, and give developers "
     "the confidence to refactor without breaking things.",
     "Testing finds bugs."),
]

COPY_TASKS = [
    ("Correct the grammar: 'She don't like apples.'", "She doesn't like apples.", "She don't likes apples."),
    ("Extract the dates from this sentence: The meeting moved from March 3 to March 10, and the review is on April 2.",
     "March 3, March 10, April 2", "March 3, March 10"),
    ("Rewrite in the passive voice: The committee approved the new budget.", "The new budget was approved by the committee.",
     "The committee has approved the new budget."),
]

SERVICE = [
    ("Customer: My order #55812 arrived but the blender jar is cracked. What can I do?",
     "I'm sorry your blender arrived damaged! Please reply with a photo of the crack and I'll ship a replacement jar for order "
     "#55812 right away at no cost — you don't need to return the broken one.",
     "Please contact the courier about the damage."),
    ("Customer: Can I change the delivery address for an order I placed an hour ago?",
     "Yes — as long as the order hasn't shipped you can change it under Orders > Edit address. If the button is greyed out, "
     "send me the new address and I'll update it for you.",
     "No, addresses can't be changed."),
    ("Customer: I was charged twice for the same order. Please help.",
     "I'm sorry about that! I can see two charges of $42.90 on your card; the second one is a pending authorisation that "
     "will be released automatically within 3–5 business days. If it's still there after that, I'll refund it manually.",
     "Please check with your bank."),
]

VERBOSE = [
    ("What is the capital of Canada?", "Ottawa.",
     "Canada is a very large country in North America with many beautiful cities such as Toronto, Vancouver and Montreal. "
     "Each of these cities has its own culture and history, and many tourists visit them every year."),
    ("How do I boil an egg?", "Place the egg in boiling water for 9 minutes, then cool it in cold water before peeling.",
     "Eggs are a very popular food all over the world and there are many ways to cook them. Some people like them soft and "
     "some people like them hard, so it really depends on your personal taste and what you want for breakfast."),
    ("Name three primary colours.", "Red, yellow and blue.",
     "Colours are everywhere around us and they can have a big effect on how we feel. Artists have studied colours for "
     "centuries, and there are many different theories about which colours are the most important."),
]

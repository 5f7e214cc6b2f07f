"""Content pools for the synthetic ProfileBench: what a user with a given label watches, searches, buys, writes.

`POOLS[dimension][label][source]` lists attribute-conditioned snippets; `DISTRACTORS[source]` lists generic
trending content anyone might see (some of it deliberately contains taxonomy words like "girl group" or
"tech news", as real feeds do). Pools are written as " | "-separated strings to keep the file readable.
Placeholders in braces ({parent}, {age}, {major}, ...) are filled per user by `profilebench.fill`.
Purchases are "item@base price"; the user's consumption level scales the price.
"""

from __future__ import annotations


def _s(text: str) -> list[str]:
    return [part.strip() for part in text.split("|") if part.strip()]


def _pool(explicit="", videos="", searches="", purchases="", follows="", comments="") -> dict[str, list[str]]:
    return {"explicit": _s(explicit), "videos": _s(videos), "searches": _s(searches),
            "purchases": _s(purchases), "follows": _s(follows), "comments": _s(comments)}


POOLS: dict[str, dict[str, dict[str, list[str]]]] = {
    "gender": {
        "male": _pool(
            explicit="he/him | {parent} of {k} | just a guy who likes {hobby} | {me_spouse}, {parent}, bbq master | {me_spouse} and {hobby} enthusiast | big brother energy | {hobby} and my beard, that's it | {me_partner} of the year 😎",
            videos="beard grooming routine | fantasy football draft strategy | barbershop fade tutorial | building a gaming PC under budget | grilling the perfect ribeye | motorcycle road trip through the mountains | NBA playoffs breakdown | how to tie a Windsor knot | car detailing secrets | bass fishing at dawn | home gym setup in the garage | suit fitting mistakes to avoid | classic muscle cars restored",
            searches="beard oil that actually works | mens running shoes wide | cologne that lasts all day | car wax vs ceramic coating | fantasy football sleepers | protein powder for bulking | how to fix a leaking tap | electric shaver vs razor",
            purchases="Beard trimmer@35 | Running shoes (men's, size 44)@80 | Whey protein 2kg@45 | Car phone mount@15 | Cologne 100ml@70 | Socket wrench set@40 | Fishing lures set@18 | Gaming mouse@30",
            follows="IronPumpFitness | GarageTorque | HoopsDaily | TheBarberLab | GrillSergeant | TrailRiderMoto | FantasyFootballNerds",
            comments="bro this fade is clean | tried this at the gym today, legs are dead | need this for my truck asap | my barber never gets it this sharp | that engine sound 🔥 | doing this to my car this weekend | finally a workout that doesn't need a spotter",
        ),
        "female": _pool(
            explicit="she/her | {parent} of {k} | just a girl who loves {hobby} | {me_spouse} and {hobby} lover | sister, daughter, {hobby} lover | her {hobby} era 🌸 | lipstick and {hobby} | {me_partner} mode on 💕",
            videos="skincare routine for dry skin | nail art ideas for spring | get ready with me: date night look | heatless curls overnight | dress try-on haul | lash lift at home | pilates for beginners | makeup for hooded eyes | period cramp relief tips | capsule wardrobe for autumn | bridesmaid makeup look | self-care Sunday reset | hair braiding for school mornings",
            searches="lip tint shade for warm undertone | sunscreen for oily skin | how to curl hair with a flat iron | floral maxi dress | nail salon near me | best mascara for short lashes | pregnancy-safe skincare | hair clips aesthetic",
            purchases="Lip tint set@18 | Silk scrunchies 6-pack@12 | Vitamin C serum@30 | Floral midi dress@40 | Eyelash curler@10 | Heatless curling ribbon@9 | Handbag organiser insert@15 | Gel nail kit@25",
            follows="GlowWithMia | NailsByJen | DailyOOTD_Lina | SkinSchool | BraidsByAmara | PilatesWithPri | LashLab",
            comments="omg the shade is perfect on me | saving this for my next hair appointment | ladies, this actually works | need this dress for my cousin's wedding | my lashes could never | the pilates burn is real 😭 | tried the heatless curls, 10/10",
        ),
    },
    "age_group": {
        "under_18": _pool(
            explicit="{age} y/o | class of {grad_year} | grade {grade} 📚 | {age}, don't tell my mom about this acc | just turned {age}!!",
            videos="homework hacks before finals | middle school lunch tier list | Minecraft survival episode | anime openings ranked | school trip vlog | Roblox obby speedrun | first day of 10th grade | braces update month 6 | study with me before mock exams | funniest classroom moments | cartoon theme songs sing-along | gym class fails",
            searches="minecraft seeds with villages | roblox free codes | how to get taller fast | math homework answers | school dance outfit | anime to watch after naruto | can you get a job at 16",
            purchases="Gaming headset@25 | Sticker pack@4 | Phone case with glitter@6 | Anime keychain@5 | Roblox gift card@10 | Backpack charm@3",
            follows="RobloxHub | MinecraftMomentsTV | AnimeRankings | HomeworkHelpBot | SchoolMemesDaily",
            comments="my teacher would never let us do this | who else is watching this in class 😂 | my mom took my phone for a week after this | doing this at recess tomorrow | I'm in 9th grade and this is so true | no homework today let's gooo",
        ),
        "18_24": _pool(
            explicit="{age}, figuring life out | gen z, obviously | just graduated 🎓 | {age} and broke lol | twenty-something, mostly tired",
            videos="freshman dorm tour | first job interview tips | festival outfit ideas | gap year backpacking | roommate drama storytime | college party fails | learning to drive at 19 | gen z slang explained | my first apartment on a tiny budget | graduation cap decorating",
            searches="first apartment checklist | how to write a resume with no experience | concert tickets student discount | hostel in lisbon | how to do taxes for the first time | internship interview questions",
            purchases="Festival bucket hat@12 | Mini fridge@90 | Concert ticket@60 | Dorm fairy lights@9 | Instant noodles 20-pack@11",
            follows="GenZMoney | DormLifeHacks | FestivalSeason | FirstJobFriday",
            comments="me at 20 with no plan 😅 | literally my roommate | adulting is a scam | the group chat needs to see this | I just got my first real paycheck",
        ),
        "25_34": _pool(
            explicit="{age} and still learning | born in {year} | late twenties, early bedtime | millennial and proud | thirty-ish and thriving",
            videos="first apartment makeover | quarter-life crisis talk | wedding guest outfits for summer | career change at 28 | millennial money mistakes | hosting a housewarming | how I saved for a deposit | 30th birthday party ideas",
            searches="mortgage calculator first home | 30th birthday gift ideas | career change at 30 | wedding guest dress code | retirement account for beginners",
            purchases="Plant stand@30 | Coffee machine@120 | Wedding gift set@50 | Standing desk@200",
            follows="MillennialMoney | CareerPivotPod | ApartmentTherapyTV | WeekendBrunchClub",
            comments="hitting 30 next year and I feel this | my twenties went by so fast | millennials remember this | every weekend is a wedding now",
        ),
        "35_44": _pool(
            explicit="turning {age} this year | born in {year}, still young at heart | {age} and counting | forty is the new thirty",
            videos="90s cartoon nostalgia | back pain after 35 | home renovation diary | midlife career reset | metabolism after 40 | songs every 90s kid knows | mortgage refinancing explained | reading glasses at 40?",
            searches="lower back pain exercises | refinance mortgage rates | 90s music playlist | best mattress for back pain | how to stay fit after 40",
            purchases="Lumbar support cushion@35 | Foam roller@25 | Blue light glasses@20 | Vitamin D supplements@14",
            follows="NinetiesKidForever | FitAfter40 | RenoDiaries | MidlifeMoney",
            comments="90s kids will remember this | my knees after 40 are not okay | this song was my whole high school | I remember when this came out in '98",
        ),
        "45_54": _pool(
            explicit="{age} and not slowing down | born in {year} | fifty and fabulous | late forties, early riser",
            videos="80s rock classics | preparing for retirement savings | joint-friendly workouts | high school reunion 30 years later | menopause and sleep tips | best reading glasses | downsizing the family home | cholesterol-friendly recipes",
            searches="retirement savings at 50 | knee pain when climbing stairs | 80s rock concert tickets | cholesterol diet plan | reunion outfit ideas",
            purchases="Knee brace@25 | Omega-3 capsules@18 | Reading glasses 3-pack@15 | Blood pressure monitor@40",
            follows="RockLegends80s | FiftyAndFit | RetireReadyTV | HeartHealthyKitchen",
            comments="saw them live in 1986! | my doctor said the same about cholesterol | 30 year reunion next month, nervous lol | the 80s were the best decade",
        ),
        "55_plus": _pool(
            explicit="{age} years young | {grand} of {k} | {age} and still dancing | born in {year}, seen it all",
            videos="tai chi morning routine | grandkids visiting vlog | blood pressure friendly diet | old songs from the 60s | square dancing in the park | calligraphy practice | vegetable garden harvest | how to video call your family | arthritis hand exercises | bird watching by the lake",
            searches="how to send photos on phone | arthritis cream | tai chi class near me | large print books | hearing aid prices | easy garden vegetables",
            purchases="Large-button phone case@12 | Arthritis gloves@15 | Walking cane@30 | Seed packets@8 | Magnifying glass@10",
            follows="TaiChiDaily | GoldenOldiesRadio | GardenWithGrandpaJoe | SeniorTechHelp",
            comments="my grandson showed me how to use this app | beautiful song, reminds me of my youth | god bless you young man | I did this in 1972! | my grandchildren love this",
        ),
    },
    "occupation": {
        "student": _pool(
            explicit="",  # built from age and education in profilebench.explicit_phrase
            videos="study with me: 3 hours pomodoro | exam week survival guide | campus food review | group project nightmares | note-taking methods compared | library study vlog | internship application tips | how I memorise 100 flashcards a day",
            searches="essay due tomorrow tips | cheap textbooks | scholarship deadline | exam timetable | how to cite a website | flashcards app",
            purchases="Highlighters set@6 | Backpack@30 | Graphing calculator@90 | Desk lamp@20 | Flashcards 500-pack@7",
            follows="StudyTok_Ray | NotesByNina | CampusLifeTV | FlashcardFrank",
            comments="me pulling an all-nighter before the exam | my professor needs to see this | finals week is destroying me | group project partner ghosted again",
        ),
        "it_internet": _pool(
            explicit="backend dev @ a startup | coder by day, gamer by night | frontend engineer, cat person | PM at a SaaS company | I write Java for a living | data engineer, pipeline plumber | software engineer 💻",
            videos="debugging at 2am | system design interview prep | mechanical keyboard build | Python tricks you didn't know | standup meeting memes | cloud outage postmortem explained | VS Code setup tour | product launch war room | day in the life at a startup",
            searches="leetcode medium solutions | kubernetes crashloopbackoff | remote developer salary | git rebase vs merge | sql window functions | ergonomic chair for coding",
            purchases="Mechanical keyboard@90 | Ergonomic mouse@40 | Monitor arm@35 | USB-C dock@70 | Laptop stand@25",
            follows="CodeWithKai | DevOpsDaily | SysDesignSimplified | ByteSizedJS | StartupGrind",
            comments="this is literally our sprint planning | prod went down on Friday again | pushed to main by mistake today 💀 | the on-call pager at 3am is real | works on my machine™",
        ),
        "finance": _pool(
            explicit="CPA and spreadsheet nerd | I work at a bank | investment analyst | loan officer by day | insurance agent, ask me anything | accountant, tax season survivor",
            videos="stock market open recap | Excel shortcuts for analysts | quarter close overtime | CFA level 1 study plan | day in the life at a bank branch | tax season memes | insurance claims explained | audit season survival",
            searches="cfa exam dates | vlookup vs xlookup | bond yield curve explained | cpa exam pass rate | pivot table tutorial",
            purchases="Financial calculator@35 | Business suit@150 | Leather portfolio@45 | Desk calendar@10",
            follows="AnalystAlex | SpreadsheetQueen | MarketMinute | TaxSeasonTV",
            comments="month-end close is killing me | auditors arrived today, pray for me | my manager lives in excel | the market open today was wild",
        ),
        "education": _pool(
            explicit="3rd grade teacher ✏️ | teaching high school chemistry | math tutor | lecturer at a community college | kindergarten teacher life | I teach English to 40 kids a day",
            videos="classroom setup tour | lesson plan ideas for grade 3 | grading papers all weekend | funny things my students said | chalkboard art | parent-teacher conference tips | first day back at school as a teacher",
            searches="printable worksheets | classroom management tips | phonics games | how to grade faster | end of term gifts for class",
            purchases="Red pens 50-pack@8 | Classroom stickers@6 | Laminator@40 | Whiteboard markers@12",
            follows="MsK_Classroom | TeachLikeAChamp | LessonPlanLab | ChalkTalkDaily",
            comments="my students would love this | grading 120 essays this weekend | using this in class on Monday | summer break can't come soon enough for us staff",
        ),
        "healthcare": _pool(
            explicit="ICU nurse | pharmacist 💊 | junior doctor surviving residency | dental hygienist | paramedic, coffee addict | physio helping people move",
            videos="12-hour night shift vlog | scrubs haul | nursing school vs reality | pharmacist explains drug interactions | ER stories | hospital cafeteria review | suturing practice | what my stethoscope has seen",
            searches="compression socks for long shifts | NCLEX tips | dosage calculation formula | best shoes for 12 hour shifts | night shift sleep schedule",
            purchases="Scrubs set@35 | Stethoscope@90 | Compression socks@15 | Clogs for long shifts@60 | Badge reel@5",
            follows="NurseLifeTay | DrMikeExplains | PharmFacts | ScrubsAndCoffee",
            comments="after a 12 hour shift this hits different | we see this on the ward all the time | patients please stop googling symptoms | charting takes longer than the actual care",
        ),
        "manufacturing_labor": _pool(
            explicit="welder, 12 years and counting | truck driver, always on the road | assembly line since {year} | electrician 🔌 | construction worker, early mornings | warehouse picker, night shift",
            videos="forklift skills compilation | construction site lunch break | truck cab sleeping setup | assembly line timelapse | welding tips for beginners | warehouse night shift | steel toe boots review | excavator operator POV",
            searches="safety boots waterproof | overtime pay rules | auto darkening welding helmet | truck stop near me | forklift license renewal",
            purchases="Steel toe boots@70 | Work gloves 12 pairs@15 | Welding helmet@60 | Thermal flask@20 | Hi-vis vest@8",
            follows="WeldingWorld | TruckerTom | SiteBossDaily | ForkliftFails",
            comments="same on our assembly line lol | that's my forklift right there | 5am start again tomorrow | foreman would fire me for this 😂",
        ),
        "service_retail": _pool(
            explicit="barista ☕ | server at a diner, tips appreciated | cashier at a supermarket | food delivery rider | hotel receptionist | hairdresser, book with me",
            videos="tray balancing skills | latte art practice | holiday rush at the mall | delivery rider day in the life | hotel front desk stories | customers be like | restaurant kitchen rush hour | folding clothes like a store pro",
            searches="non slip shoes for kitchen | delivery app bonus this week | how to deal with rude customers | barista training course",
            purchases="Non-slip shoes@35 | Apron@12 | Scooter phone holder@15 | Rain poncho@10",
            follows="BaristaBen | RetailStories | KitchenRushTV | RiderLife",
            comments="anyone who worked a till felt this one | worked a double today, feet are done | the lunch rush was insane | please tip your rider 🙏",
        ),
        "government": _pool(
            explicit="civil servant | work at the city council | public sector since {year} | police officer | firefighter 🚒 | clerk at the tax office",
            videos="civil service exam prep | a day at the city office | public policy explained | bureaucracy memes | community outreach event | budget committee meeting highlights",
            searches="civil service exam syllabus | government pension calculator | public holiday schedule | department transfer rules",
            purchases="Formal shirt@30 | Document folder@8 | Badge holder@5",
            follows="PolicyExplained | CityHallDiaries | PublicServiceLife",
            comments="paperwork in triplicate as always | our department meeting was exactly this | forms, stamps, more forms",
        ),
        "self_employed": _pool(
            explicit="owner of a little noodle shop | freelance designer | I sell handmade candles | run my own repair shop | online store owner, dm for orders | my own boss since {year}",
            videos="running my small bakery | packing orders for my online shop | freelance pricing tips | side hustle to full time | market stall setup | doing my own taxes as a freelancer | a week running a food truck",
            searches="business license renewal | wholesale packaging supplier | invoice template | how to get more customers | card reader fees compared",
            purchases="Label printer@80 | Shipping boxes 100-pack@25 | Card reader@50 | Packing tape 12 rolls@14",
            follows="SmallBizSarah | SellerTipsDaily | FoodTruckLife | FreelanceFiles",
            comments="packing orders till midnight again | my shop had its best week | no boss, no paid holidays either | clients who want it yesterday 😩",
        ),
        "homemaker": _pool(
            explicit="full-time at home, running the house | home cook and house manager | keeping the home running | CEO of our household",
            videos="cleaning motivation | meal prep for the whole family | laundry folding hacks | organising the pantry | weekly grocery haul | day in my life at home | speed cleaning the kitchen",
            searches="stain removal tips | family dinner recipes | cleaning schedule printable | bulk rice storage",
            purchases="Mop set@25 | Food storage containers@20 | Slow cooker@45 | Laundry basket@12",
            follows="CleanWithCarla | HomeRoutineTV | PantryGoals",
            comments="doing this while the little one naps | my whole day is laundry lol | dinner for five again tonight | house is finally clean for 5 minutes",
        ),
        "retired": _pool(
            explicit="retired {former_job} | retired since {year} | finally retired, every day is Saturday | former {former_job}, now full-time gardener",
            videos="retirement morning routine | pension payments explained | volunteering after retirement | fishing on a weekday | travel with the retirement club | senior discount haul",
            searches="pension increase this year | travel group for over 60 | volunteer opportunities near me | retirement hobbies",
            purchases="Fishing rod@50 | Garden tools set@30 | Crossword books@8",
            follows="RetiredAndRoaming | GoldenYearsClub | PensionNews",
            comments="no alarm clock since I stopped working | weekday afternoons are the best now | worked 40 years for this freedom",
        ),
    },
    "education": {
        "high_school_or_below": _pool(
            explicit="left school at 16 | high school diploma, life degree | no degree, all hustle | school wasn't for me",
            videos="jobs without a degree that pay | trade apprenticeship life | skipped college, no regrets | learning on the job",
            searches="GED requirements | jobs no degree needed | apprenticeship near me",
            follows="TradesNotDebt | NoDegreeNeeded",
            comments="never finished school and I'm doing fine | school wasn't for me either | learned everything on the job",
        ),
        "college": _pool(
            explicit="community college grad | diploma in {major} from a vocational school | 2-year degree in {major}",
            videos="2-year program vs university | community college transfer tips | vocational training day | is a technical diploma worth it",
            searches="community college credits transfer | vocational certificate programs | 2 year programs that pay well",
            follows="CommunityCollegeLife | TradeSchoolTV",
            comments="did my 2 years at community college, best decision | vocational school taught me more than any lecture",
        ),
        "bachelor": _pool(
            explicit="BA in {major} | {school} alum | BSc {major}, class of {year_grad} | four years of {major}, no regrets",
            videos="college graduation vlog | alumni homecoming weekend | senior year of university recap | campus tour of my alma mater | what I'd tell my freshman self",
            searches="alumni association events | diploma frame | is a masters worth it after my degree",
            follows="AlumniNetwork | UniMemories",
            comments="this brings back memories of my dorm | my alma mater still looks the same | four years went by too fast",
        ),
        "postgraduate": _pool(
            explicit="PhD in {major} | MSc {major} | doctoral researcher | master's degree in {major}",
            videos="thesis defense day | reviewer 2 memes | lab meeting survival | PhD life reality | writing my dissertation | conference poster session",
            searches="latex table formatting | zotero citations | postdoc applications | GRE verbal tips | how to respond to reviewers",
            purchases="Lab notebook@12 | Statistics textbook@60 | Poster printing@40",
            follows="PhDComicsFan | AcademicLifeTV | ThesisWhisperer",
            comments="reviewer 2 strikes again | my supervisor said the same thing | chapter 3 of the thesis is eating me alive",
        ),
    },
    "life_stage": {
        "single": _pool(
            explicit="single 🙃 | forever solo | not looking, just vibing | single and happy | table for one, please",
            videos="solo travel diaries | cooking for one | dating app horror stories | single on Valentine's day | living alone tips | my self-love era",
            searches="solo trip destinations | dating app bio ideas | meal prep for one | apartment for one person",
            purchases="Single-serve blender@25 | Solo camping tent@60",
            follows="SoloTravelSam | DatingAppDisasters | CookingForOne",
            comments="table for one again and I love it | still single, still thriving | my cat is my only valentine",
        ),
        "in_relationship": _pool(
            explicit="taken by {pname} ❤️ | engaged!! 💍 | {partner}'s biggest fan | {n} years with my person",
            videos="date night ideas | couple challenge | surprise for my {partner} | anniversary gift ideas | long distance relationship tips | proposal reactions | meeting the parents",
            searches="anniversary gift for {partner} | couple matching outfits | engagement ring styles | romantic restaurants near me",
            purchases="Couple keychains@10 | Anniversary photo book@30 | Matching hoodies@45",
            follows="CoupleGoalsTV | DateNightIdeas | ProposalMoments",
            comments="tagging my {partner} right now | we did this on our third date | my {partner} would never 😂",
        ),
        "married_no_children": _pool(
            explicit="happily married, no kids yet | just married 💍 | married to my best friend | two incomes, no kids, one dog",
            videos="newlywed life | honeymoon vlog | married life expectations vs reality | couple's budget | weekend with my {spouse} | first year of marriage",
            searches="honeymoon destinations | couples cooking class | wedding photo album | joint bank account pros and cons",
            purchases="Wedding album@80 | His and hers mugs@15 | Honeymoon luggage@120",
            follows="NewlywedDiaries | HoneymoonHotspots",
            comments="my {spouse} does the exact same thing | first year of marriage be like | when people ask when the baby is coming 🙄",
        ),
        "parent_young_children": _pool(
            explicit="{parent} of {k} little ones | {parent} to a toddler | raising {k} under 5 | new {parent} 👶",
            videos="toddler tantrum hacks | baby sleep schedule | nursery rhymes compilation | school run morning routine | lunchbox ideas for kids | kids' birthday party ideas | potty training tips | cartoon songs for toddlers",
            searches="diaper rash cream | best stroller | kindergarten enrollment | kids shows without ads | baby formula shortage",
            purchases="Diapers size 3@30 | Toddler snack cups@8 | Picture books set@20 | Baby monitor@60 | Kids' scooter@35",
            follows="TinyHumansTV | ToddlerTalk | ParentingHacks | NurseryRhymesWorld",
            comments="my 3 year old does this every night | nap time = my only free time | the baby finally slept 6 hours!! | showing this to my kids tomorrow",
        ),
        "parent_older_children": _pool(
            explicit="{parent} of {k} teens | {parent} of a college freshman | {k} kids, all taller than me now | proud {parent} of grown-ups",
            videos="helping my teen with homework | college move-in day with my kid | teen driver lessons | empty nest feelings | parenting teenagers | graduation day for my son | university tuition planning",
            searches="college application deadlines | driving school for teens | curfew rules for teenagers | tuition payment plan",
            purchases="Dorm bedding set@50 | Laptop for my teen@500 | SAT prep book@25",
            follows="RaisingTeens | EmptyNestersClub | CollegeParentsGuide",
            comments="my teenager just rolled her eyes at me for this | my son starts university next fall | the house is so quiet since the kids moved out",
        ),
    },
    "consumption_level": {
        "low": _pool(
            explicit="saving every penny | living paycheck to paycheck | thrift store royalty | if it's not on sale I'm not buying",
            videos="dollar store finds | grocery haul under $30 | living on minimum wage | free things to do this weekend | thrift flip | meals for under $2",
            searches="coupon codes | cheapest phone plan | clearance sale near me | second hand furniture | free shipping no minimum",
            purchases="Value pack tissues@3 | Clearance t-shirt@4 | Phone case@2 | Instant noodles 30-pack@9",
            follows="FrugalFrank | CouponQueen | ThriftFlipTV",
            comments="waiting for this to go on sale | too expensive for me tbh | where can I get it cheaper? | got the same thing for half price at the market",
        ),
        "medium": _pool(
            explicit="not rich, not broke, just comfortable | spend smart, treat sometimes",
            videos="warehouse club haul | mid-range phone comparison | weekend getaway ideas | home appliance reviews | is it worth the upgrade?",
            searches="best value laptop | air fryer reviews | family restaurant deals | mid range headphones",
            purchases="Air fryer@70 | Running shoes@80 | Bluetooth speaker@45 | Duvet set@60",
            follows="ValueTechReviews | SmartShopperTV",
            comments="worth it at that price | added to cart, will wait for payday | decent quality for the money",
        ),
        "high": _pool(
            explicit="treat yourself is a lifestyle | frequent flyer, gold member | collector of nice things | first class or nothing ✈️",
            videos="designer bag unboxing | first class flight review | five star hotel room tour | supercar test drive | omakase dinner | watch collection tour | private villa in Bali",
            searches="rolex submariner price | business class deals | golf club membership fees | michelin star restaurants | yacht charter",
            purchases="Designer handbag@1800 | Skincare set (la mer)@320 | Noise cancelling headphones@350 | Cashmere coat@900",
            follows="LuxuryLifeTV | WatchCollectorsClub | FirstClassFlyer",
            comments="bought two, one for the office | price doesn't matter if it's good | the suite at that hotel is better | just ordered it, arrives tomorrow",
        ),
    },
}

DISTRACTORS: dict[str, list[str]] = {
    "videos": _s(
        "cat reacts to cucumber | satisfying slime ASMR | world's spiciest noodle challenge | street food in Bangkok | magic trick revealed | "
        "dance challenge remix | prank on my roommate | dog learns to skateboard | funniest fails of the week | movie trailer breakdown | "
        "girl group comeback stage | boy band reunion concert | Spider-Man ending explained | tech news roundup | Doctor Who best moments | "
        "customer service fails compilation | Married at First Sight recap | teacher's pet prank | premium vs cheap pizza taste test | "
        "senior dog adoption story | the internet's favourite cake | elderly man dances at the wedding | teen wolf season recap | "
        "luxury hotel for cats | budget vs expensive burger | average guy tries ballet | freelancer life meme | world cup goals | "
        "building a house in the jungle | how lightning works | rating airport food | 24 hours in Tokyo | karaoke fail | "
        "sunset timelapse | hydraulic press vs gummy bear | tiny house tour | ocean cleanup update | late night talk show clip | "
        "lo-fi beats to relax | puppy's first snow | giant cookie recipe | unboxing the viral gadget | parkour across rooftops | "
        "wedding dance gone wrong | rescue cat transformation | celebrity interview bloopers | real estate mansion tour | science experiment gone wrong"
    ),
    "comments": _s(
        "😂😂😂 | who's here in 2025? | the ending got me | this deserves more views | I can't stop watching this | the music is so good | "
        "wait for it... | underrated | came here from the other video | algorithm brought me here | ok but why is this so relatable | "
        "need part 2 | the cat is the real star | 10/10 no notes | I've watched this 5 times | sending this to everyone | this man is a legend | "
        "that girl is so talented | not me crying at 2am | how is this real"
    ),
    "searches": _s(
        "weather tomorrow | funny cat videos | new movie releases | lottery results | how to make bubble tea | song from the dance trend | "
        "world cup schedule | best pizza near me | how to screen record | horoscope today | viral pasta recipe | concert tickets | "
        "what time is it in tokyo | translate hello to japanese | bus schedule"
    ),
    "purchases": _s(
        "Phone charger@12 | Snack box@15 | Umbrella@10 | Bubble tea voucher@6 | Water bottle@12 | LED strip lights@15 | Socks 5-pack@8 | "
        "Bluetooth earbuds@25 | Instant coffee@7 | Power bank@20 | Sunglasses@14"
    ),
    "follows": _s(
        "DailyLaughsTV | CatsOfTok | FoodieFinds | WorldNews60s | MagicMarco | DanceTrendHub | MovieRecapsNow | SatisfyingClips | "
        "TravelWithTom | PuppyPatrol | LifeHacksDaily | MusicChartsLive | ScienceIn60"
    ),
    "bios": _s(
        "living my best life ✨ | just here for the memes | coffee first | dreamer 🌙 | good vibes only | food lover | "
        "don't take life too seriously | sunsets and playlists | lurker | be kind | travel > everything | 🐱🌸🎧"
    ),
}

TITLE_TEMPLATES = _s(
    "{t} | {t} | POV: {t} | {t} (wait for the end) | day {n}: {t} | {t} 🔥 | my honest take: {t} | {t} in 60 seconds | "
    "{t} - part {n} | {t} #shorts | ok so... {t} | {t} 😳 | {t} (full version) | story time: {t}"
)
TAG_STOPWORDS = set(_s("after | with | from | your | that | this | what | when | into | without | across | before | under | first | every | than | them | they | ideas | tips"))
GENERIC_TAGS = _s("fyp | foryou | viral | trending | explore | reels | daily | vlog | funny | relatable | tips | 2025")

# Nickname parts (neutral) and filler values for placeholders.
NICK_WORDS = _s(
    "sunny | pixel | maple | river | echo | lucky | blue | nova | mango | shadow | cloud | tiger | lemon | star | moss | "
    "velvet | comet | pepper | breeze | orbit | rusty | jade | koala | storm"
)
FIRST_NAMES = _s("Alex | Sam | Jordan | Chris | Lee | Mia | Noah | Emma | Leo | Zoe | Omar | Lina | Ken | Ivy | Max | Rosa")
HOBBIES = _s("coffee | hiking | memes | anime | football | cooking | gaming | music | photography | cats | dogs | gardening | reading | travel")
MAJORS = _s("computer science | economics | nursing | mechanical engineering | biology | accounting | marketing | history | law | design | chemistry | psychology")
SCHOOLS = _s("State University | Riverside College | Northgate University | Lakeshore University | Central Tech | Westfield University")
FORMER_JOBS = _s("teacher | nurse | engineer | bus driver | accountant | postman | factory foreman | bank clerk | shop owner | police officer")
LOCATIONS = _s(
    "Manila | Jakarta | São Paulo | Mexico City | Lagos | Cairo | Istanbul | Madrid | Warsaw | Chicago | Houston | Toronto | "
    "Manchester | Lyon | Berlin | Seoul | Osaka | Bangkok | Hanoi | Mumbai | Karachi | Dhaka | Nairobi | Lima | Bogotá | Sydney | "
    "a small town | countryside | suburbs"
)
DEVICES = {
    "low": _s("Redmi A3 | Galaxy A05 | Moto E13 | Tecno Spark 10 | Nokia C32 | itel P55"),
    "medium": _s("Galaxy A55 | Pixel 8a | iPhone 13 | Redmi Note 13 Pro | OnePlus Nord 4 | Galaxy S21 FE"),
    "high": _s("iPhone 16 Pro Max | Galaxy S24 Ultra | Galaxy Z Fold6 | Pixel 9 Pro | iPhone 16 Pro | Huawei Mate X6"),
}
# Live-stream gifts: (name, coins) by spending tier.
GIFTS = {
    "low": [("Rose", 1), ("Finger heart", 5), ("Ice cream", 1), ("GG", 1)],
    "medium": [("Doughnut", 30), ("Perfume", 20), ("Hand hearts", 100), ("Confetti", 100), ("Hat and mustache", 99)],
    "high": [("Sports car", 7000), ("Rocket", 10000), ("Lion", 29999), ("Galaxy", 1000), ("Yacht", 9888), ("Universe", 34999)],
}
STREAMERS = _s("LiveWithLeo | SingerSuki | GamerGodTV | CookingLiveKat | NightOwlTalks | DJ_Rafa | FishingLiveBob | KaraokeQueenLi")
